//! Barcodes drawn in the terminal. Light modules are drawn as full blocks so that the code scans
//! from a dark-background terminal (a scanner needs dark modules on a light ground).

use tessera_core::BarcodeMatrix;

/// 2D codes: two module rows per text line with half blocks; linear codes: bars 8 lines tall.
pub fn draw(m: &BarcodeMatrix) -> String {
    let q = m.quiet_zone as i64;
    let (w, h) = (i64::from(m.width), i64::from(m.height));
    let dark = |x: i64, y: i64| x >= 0 && y >= 0 && x < w && y < h && m.is_dark(x as u32, y as u32);
    let mut out = String::new();
    if m.is_linear() {
        for _ in 0..8 {
            for x in -q..w + q {
                out.push(if dark(x, 0) { ' ' } else { '█' });
            }
            out.push('\n');
        }
        if let Some(text) = &m.human_readable {
            let total = (w + 2 * q) as usize;
            out.push_str(&format!("{text:^total$}\n"));
        }
        return out;
    }
    let mut y = -q;
    while y < h + q {
        for x in -q..w + q {
            let (top, bottom) = (!dark(x, y), !dark(x, y + 1));
            out.push(match (top, bottom) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
        y += 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::Symbology;

    #[test]
    fn qr_lines_cover_two_rows_each_with_quiet_zone() {
        let m = BarcodeMatrix::encode(Symbology::Qr, "x").unwrap();
        let text = draw(&m);
        let lines: Vec<&str> = text.lines().collect();
        let side = (m.width + 2 * m.quiet_zone) as usize;
        assert_eq!(lines.len(), side.div_ceil(2));
        assert!(lines.iter().all(|l| l.chars().count() == side));
        assert!(lines[0].chars().all(|c| c == '█'), "quiet zone is light");
    }

    #[test]
    fn linear_codes_print_the_number_under_the_bars() {
        let m = BarcodeMatrix::encode(Symbology::Ean8, "96385074").unwrap();
        let text = draw(&m);
        assert_eq!(text.lines().count(), 9);
        assert!(text.lines().last().unwrap().contains("96385074"));
    }
}
