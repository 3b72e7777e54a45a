//! Display text: every name, title, description, address or label a person reads (a shop's name,
//! an offer's title, the card holder's name, a push message). One rule, applied here only:
//!
//! 1. normalised to Unicode NFC (the same name typed on two keyboards is the same text);
//! 2. trimmed of white space at both ends;
//! 3. refused if it holds a control character (a line break only where a field allows several
//!    lines), a bidirectional embedding, override or isolate (U+202A–U+202E, U+2066–U+2069: they
//!    make text read differently from what it is), or nothing visible at all (only white space,
//!    zero-width and other invisible characters);
//! 4. refused if longer than its field allows, counted in characters after 1 and 2.
//!
//! [`display`] gives the clean text (the server stores that); [`check_display`] only checks, for
//! values that are already stored or cached.

use std::borrow::Cow;

use crate::error::CatalogError;

/// A bidirectional embedding, override or isolate.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that draw nothing: white space, format characters (zero-width space, joiners,
/// word joiner, byte order mark, soft hyphen, marks of direction), fillers and variation
/// selectors.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// Whether a field's text may span several lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    One,
    Several,
}

/// The clean form of `value` for `field`: NFC, trimmed, checked. `required`: empty (after
/// trimming) is refused.
pub fn display<'a>(
    field: &'static str,
    value: &'a str,
    max_chars: usize,
    required: bool,
    lines: Lines,
) -> Result<Cow<'a, str>, CatalogError> {
    let nfc = icu_normalizer::ComposingNormalizerBorrowed::new_nfc().normalize(value);
    let clean: Cow<'a, str> = match nfc {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
    };
    check_display(field, &clean, max_chars, required, lines)?;
    Ok(clean)
}

/// Checks `value` by the rule of [`display`], as it is: no normalising, no copy. For text
/// already stored or cached (the server stores the clean form), checked on every catalog page
/// a phone applies.
pub fn check_display(
    field: &'static str,
    value: &str,
    max_chars: usize,
    required: bool,
    lines: Lines,
) -> Result<(), CatalogError> {
    let value = value.trim();
    if value.is_empty() {
        if required {
            return Err(CatalogError::new(field, "must not be empty"));
        }
        return Ok(());
    }
    let mut visible = false;
    let mut count = 0usize;
    for c in value.chars() {
        count += 1;
        if c.is_control() && !(c == '\n' && lines == Lines::Several) {
            return Err(CatalogError::new(field, "contains control characters"));
        }
        if is_bidi_control(c) {
            return Err(CatalogError::new(
                field,
                "contains bidirectional override characters",
            ));
        }
        visible |= !is_invisible(c);
    }
    if !visible {
        return Err(CatalogError::new(field, "has no visible character"));
    }
    if count > max_chars {
        return Err(CatalogError::new(
            field,
            format!("is longer than {max_chars} characters"),
        ));
    }
    Ok(())
}

/// Replaces `value` by its clean form.
pub fn clean(
    field: &'static str,
    value: &mut String,
    max_chars: usize,
    required: bool,
    lines: Lines,
) -> Result<(), CatalogError> {
    if let Cow::Owned(s) = display(field, value, max_chars, required, lines)? {
        *value = s;
    } else {
        let trimmed = value.trim();
        if trimmed.len() != value.len() {
            *value = trimmed.to_owned();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Result<String, String> {
        display("name", s, 20, true, Lines::One)
            .map(|c| c.into_owned())
            .map_err(|e| e.reason)
    }

    #[test]
    fn clean_text_is_nfc_and_trimmed() {
        assert_eq!(one("  Café du Port \n").unwrap(), "Café du Port");
        // "e" + combining acute becomes "é".
        assert_eq!(one("Cafe\u{301}").unwrap(), "Caf\u{e9}");
        // Right-to-left text and its marks are fine.
        assert_eq!(one("مقهى\u{200F}").unwrap(), "مقهى\u{200F}");
        assert_eq!(one("Ⅻ 🍵").unwrap(), "Ⅻ 🍵");
    }

    #[test]
    fn invisible_control_and_override_text_is_refused() {
        assert_eq!(one("\u{200B}").unwrap_err(), "has no visible character");
        assert_eq!(
            one("\u{200B}\u{FEFF}\u{2060}").unwrap_err(),
            "has no visible character"
        );
        assert_eq!(one("\u{3164}").unwrap_err(), "has no visible character");
        assert_eq!(one("   ").unwrap_err(), "must not be empty");
        assert_eq!(
            one("Shop\u{202E}evil").unwrap_err(),
            "contains bidirectional override characters"
        );
        assert_eq!(
            one("a\u{2067}b").unwrap_err(),
            "contains bidirectional override characters"
        );
        assert_eq!(one("a\u{7}b").unwrap_err(), "contains control characters");
        assert_eq!(one("a\nb").unwrap_err(), "contains control characters");
        assert!(display("d", "line 1\nline 2", 20, true, Lines::Several).is_ok());
        assert_eq!(
            one(&"x".repeat(21)).unwrap_err(),
            "is longer than 20 characters"
        );
        // Counted after normalising: 20 "é" typed as e + accent are 20 characters.
        assert!(one(&"e\u{301}".repeat(20)).is_ok());
        assert!(display("d", "", 20, false, Lines::One).is_ok());
    }

    #[test]
    fn clean_rewrites_in_place() {
        let mut s = " Cafe\u{301} ".to_owned();
        clean("name", &mut s, 20, true, Lines::One).unwrap();
        assert_eq!(s, "Caf\u{e9}");
        let mut t = "Thé ".to_owned();
        clean("name", &mut t, 20, true, Lines::One).unwrap();
        assert_eq!(t, "Thé");
    }
}
