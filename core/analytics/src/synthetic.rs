//! A generated programme for benchmarks and tests: members who enrol over two years, buy at
//! their own pace, slow down in the weeks before they stop coming, and stop. Deterministic for a
//! seed (SplitMix64), so a figure can be measured again on the same programme.

use super::{History, Sale};

/// SplitMix64: a small, well-known generator; plenty for fake shoppers.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Exponential with this mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

/// `members` members enrolled over the 730 days before `as_of`, each buying every
/// `exp(mean gap)` days (a gap of 3 to 60 days, by member) a basket of about 40 €, until a
/// churn day drawn from an exponential of mean 400 days after enrolment; in the 60 days before
/// it they buy at a third of their pace. Points: one per euro.
pub fn programme(members: usize, as_of: i64, seed: u64) -> Vec<History> {
    let mut rng = Rng::new(seed);
    (0..members)
        .map(|i| {
            let enrolled = as_of - 730 + (rng.unit() * 730.0) as i64;
            let gap = 3.0 * 20f64.powf(rng.unit());
            let churn = enrolled + rng.exp(400.0) as i64;
            let slow_from = churn - 60;
            let mut sales = vec![];
            let mut day = enrolled as f64 + rng.exp(gap);
            while (day as i64) < as_of.min(churn) {
                let d = day as i64;
                let net = (4000.0 * (0.25 + 1.5 * rng.unit())) as i64;
                sales.push(Sale {
                    day: d,
                    net_cents: net,
                    points: net / 100,
                });
                let pace = if d >= slow_from { 3.0 } else { 1.0 };
                day += rng.exp(gap * pace).max(1.0);
            }
            History {
                member_id: format!("m{i:07}"),
                enrolled_day: enrolled,
                sales,
            }
        })
        .collect()
}
