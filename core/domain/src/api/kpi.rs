//! The programme's KPIs (issue #19): counters kept per day and shop by the server in the
//! transaction of each change (enrolments, receipts and revenue, points by kind, the coupon
//! funnel, challenges), and the report the console and the admin API show, derived here from
//! those counters: totals, members' share of revenue, average baskets, points liability and
//! breakage.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The metrics counted per day (and per shop where the change has one). Coupon metrics carry
/// the offer: `coupons_issued:of-009`.
pub mod metric {
    pub const ENROLMENTS: &str = "enrolments";
    pub const RECEIPTS: &str = "receipts";
    pub const REVENUE_CENTS: &str = "revenue_cents";
    pub const MEMBER_RECEIPTS: &str = "member_receipts";
    pub const MEMBER_REVENUE_CENTS: &str = "member_revenue_cents";
    /// `points_earn`, `points_burn`, `points_expire`, `points_adjust`, `points_reverse`,
    /// `points_bonus`: the sum of the ledger's entries of that kind (signed).
    pub const POINTS_PREFIX: &str = "points_";
    pub const COUPONS_ISSUED: &str = "coupons_issued:";
    pub const COUPONS_CLIPPED: &str = "coupons_clipped:";
    pub const COUPONS_REDEEMED: &str = "coupons_redeemed:";
    pub const CHALLENGE_JOINS: &str = "challenge_joins";
    pub const CHALLENGE_COMPLETIONS: &str = "challenge_completions";
    /// Coupons clipped online (app or website) and redeemed in a shop.
    pub const WEB_TO_STORE: &str = "redemptions_web_to_store";
    /// Coupons a shop's purchase earned, redeemed on the website.
    pub const STORE_TO_WEB: &str = "redemptions_store_to_web";
    /// Campaign and journey pushes the push services accepted.
    pub const PUSHES_SENT: &str = "pushes_sent";
    /// Pushes members opened (the apps report a `push_opened` analytics event on a tap).
    pub const PUSHES_OPENED: &str = "pushes_opened";
    /// Members: +1 at enrolment, −1 at erasure (a level: summed over every day up to a date).
    pub const MEMBERS: &str = "members";
    /// `consent:<purpose>:<channel>`: members whose latest decision for the pair is a grant
    /// (+1 when it becomes one, −1 when it stops being one or the member is erased; a level).
    pub const CONSENT_PREFIX: &str = "consent:";
    /// Every shop together (a change without a shop is counted here only).
    pub const ALL_SHOPS: &str = "*";
}

/// A day as counted: days since 1970-01-01 (UTC).
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(86_400_000)
}

/// `YYYY-MM-DD` of a counted day.
pub fn day_text(day: i64) -> String {
    crate::rfc3339_ms(day.saturating_mul(86_400_000))
        .get(..10)
        .unwrap_or_default()
        .to_owned()
}

/// One day's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KpiDay {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub enrolments: i64,
    /// Receipts the tills reported (voids taken off), and those with a member's card.
    pub receipts: i64,
    pub member_receipts: i64,
    /// Net of returns and voids.
    pub revenue_cents: i64,
    pub member_revenue_cents: i64,
    /// Points by kind: earned at purchases, bonuses (challenges), spent on rewards (negative),
    /// lapsed (negative), corrected by staff, taken back after returns (negative).
    pub points_earned: i64,
    pub points_bonus: i64,
    pub points_spent: i64,
    pub points_expired: i64,
    pub points_adjusted: i64,
    pub points_reversed: i64,
    pub challenge_joins: i64,
    pub challenge_completions: i64,
    /// Coupons clipped online redeemed in a shop, and coupons a shop's purchase earned redeemed
    /// on the website (on the day and in the shop of the redemption; voids taken off).
    pub web_to_store: i64,
    pub store_to_web: i64,
    /// Campaign and journey pushes accepted by FCM and APNs, and pushes members opened.
    pub pushes_sent: i64,
    #[serde(default)]
    pub pushes_opened: i64,
}

/// Members who consented to a purpose on a channel, at the end of the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentOptIn {
    /// `marketing_offers`, `geolocated_offers`…
    pub purpose: String,
    /// `push`, `email`, `sms`, `in_app`…
    pub channel: String,
    pub members: i64,
    /// Of all members (0–1; `None` without members).
    pub rate: Option<f64>,
}

/// The coupon funnel of one offer over the period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CouponFunnel {
    pub offer_id: String,
    /// Every coupon of the offer issued (clipped, earned, bought, a challenge's reward).
    pub issued: i64,
    /// Of those, clipped by members.
    pub clipped: i64,
    /// Redeemed (in the shop asked for, or everywhere).
    pub redeemed: i64,
}

/// The KPIs of a period, for one shop or all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KpiReport {
    /// `YYYY-MM-DD`, both included.
    pub from: String,
    pub to: String,
    /// `None`: every shop.
    pub shop: Option<String>,
    /// Each day of the period, oldest first.
    pub days: Vec<KpiDay>,
    /// The period's sums.
    pub totals: KpiDay,
    /// Members' receipts' share of the revenue (0–1; `None` without revenue).
    pub member_revenue_share: Option<f64>,
    /// Average basket of all receipts, and of members' receipts.
    pub average_basket_cents: Option<i64>,
    pub member_average_basket_cents: Option<i64>,
    /// Points members hold at the end of the period (the programme's liability).
    pub points_liability: i64,
    /// Points lapsed over points issued (earned and bonuses) in the period.
    pub breakage_rate: Option<f64>,
    pub coupons: Vec<CouponFunnel>,
    /// Members at the end of the period (the programme's, whatever the shop).
    #[serde(default)]
    pub members: i64,
    /// Consent at the end of the period, per purpose and channel with at least one grant.
    #[serde(default)]
    pub consent_opt_in: Vec<ConsentOptIn>,
    /// Pushes opened over pushes sent in the period.
    #[serde(default)]
    pub push_open_rate: Option<f64>,
}

fn add(day: &mut KpiDay, metric: &str, v: i64) {
    match metric {
        metric::ENROLMENTS => day.enrolments += v,
        metric::RECEIPTS => day.receipts += v,
        metric::MEMBER_RECEIPTS => day.member_receipts += v,
        metric::REVENUE_CENTS => day.revenue_cents += v,
        metric::MEMBER_REVENUE_CENTS => day.member_revenue_cents += v,
        "points_earn" => day.points_earned += v,
        "points_bonus" => day.points_bonus += v,
        "points_burn" => day.points_spent += v,
        "points_expire" => day.points_expired += v,
        "points_adjust" => day.points_adjusted += v,
        "points_reverse" => day.points_reversed += v,
        metric::CHALLENGE_JOINS => day.challenge_joins += v,
        metric::CHALLENGE_COMPLETIONS => day.challenge_completions += v,
        metric::WEB_TO_STORE => day.web_to_store += v,
        metric::STORE_TO_WEB => day.store_to_web += v,
        metric::PUSHES_SENT => day.pushes_sent += v,
        metric::PUSHES_OPENED => day.pushes_opened += v,
        _ => {}
    }
}

fn ratio(a: i64, b: i64) -> Option<f64> {
    (b != 0).then(|| a as f64 / b as f64)
}

impl KpiReport {
    /// The report of days `from..=to` from the counters of those days (`rows`: metric, day,
    /// value), every points counter of the programme up to `to` (the liability: members'
    /// points are the programme's, whichever shop the report is for), and the levels up to `to`
    /// (`levels`: members and consent, summed over every day).
    pub fn from_counters(
        from: i64,
        to: i64,
        shop: Option<String>,
        rows: &[(String, i64, i64)],
        points_liability: i64,
        levels: &[(String, i64)],
    ) -> KpiReport {
        let mut days: BTreeMap<i64, KpiDay> = (from..=to)
            .map(|d| {
                (
                    d,
                    KpiDay {
                        day: day_text(d),
                        ..KpiDay::default()
                    },
                )
            })
            .collect();
        let mut totals = KpiDay::default();
        let mut coupons: BTreeMap<&str, CouponFunnel> = BTreeMap::new();
        for (m, d, v) in rows {
            if let Some(day) = days.get_mut(d) {
                add(day, m, *v);
            }
            add(&mut totals, m, *v);
            for (prefix, pick) in [
                (metric::COUPONS_ISSUED, 0),
                (metric::COUPONS_CLIPPED, 1),
                (metric::COUPONS_REDEEMED, 2),
            ] {
                if let Some(offer) = m.strip_prefix(prefix) {
                    let f = coupons.entry(offer).or_insert_with(|| CouponFunnel {
                        offer_id: offer.to_owned(),
                        ..CouponFunnel::default()
                    });
                    match pick {
                        0 => f.issued += v,
                        1 => f.clipped += v,
                        _ => f.redeemed += v,
                    }
                }
            }
        }
        let issued = totals.points_earned + totals.points_bonus;
        let members = levels
            .iter()
            .filter(|(m, _)| m == metric::MEMBERS)
            .map(|(_, v)| *v)
            .sum::<i64>();
        let consent_opt_in = levels
            .iter()
            .filter_map(|(m, v)| {
                let (purpose, channel) = m.strip_prefix(metric::CONSENT_PREFIX)?.split_once(':')?;
                (*v > 0).then(|| ConsentOptIn {
                    purpose: purpose.to_owned(),
                    channel: channel.to_owned(),
                    members: *v,
                    rate: ratio(*v, members),
                })
            })
            .collect();
        KpiReport {
            members,
            consent_opt_in,
            push_open_rate: ratio(totals.pushes_opened, totals.pushes_sent),
            from: day_text(from),
            to: day_text(to),
            shop,
            member_revenue_share: ratio(totals.member_revenue_cents, totals.revenue_cents),
            average_basket_cents: ratio(totals.revenue_cents, totals.receipts)
                .map(|v| v.round() as i64),
            member_average_basket_cents: ratio(totals.member_revenue_cents, totals.member_receipts)
                .map(|v| v.round() as i64),
            points_liability,
            breakage_rate: ratio(-totals.points_expired, issued),
            days: days.into_values().collect(),
            totals,
            coupons: coupons.into_values().collect(),
        }
    }

    /// The days as CSV (a header line, then one line a day), for a spreadsheet.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "day,enrolments,receipts,member_receipts,revenue_cents,member_revenue_cents,\
             points_earned,points_bonus,points_spent,points_expired,points_adjusted,\
             points_reversed,challenge_joins,challenge_completions,web_to_store,store_to_web,\
             pushes_sent,pushes_opened\n",
        );
        for d in &self.days {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                d.day,
                d.enrolments,
                d.receipts,
                d.member_receipts,
                d.revenue_cents,
                d.member_revenue_cents,
                d.points_earned,
                d.points_bonus,
                d.points_spent,
                d.points_expired,
                d.points_adjusted,
                d.points_reversed,
                d.challenge_joins,
                d.challenge_completions,
                d.web_to_store,
                d.store_to_web,
                d.pushes_sent,
                d.pushes_opened
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_derived_from_the_counters() {
        let d0 = day_of(1_790_000_000_000);
        let rows: Vec<(String, i64, i64)> = [
            ("enrolments", d0, 2),
            ("receipts", d0, 3),
            ("member_receipts", d0, 2),
            ("revenue_cents", d0, 9_000),
            ("member_revenue_cents", d0, 6_000),
            ("points_earn", d0, 60),
            ("points_expire", d0 + 1, -15),
            ("points_burn", d0 + 1, -20),
            ("coupons_issued:of-1", d0, 4),
            ("coupons_clipped:of-1", d0, 3),
            ("coupons_redeemed:of-1", d0 + 1, 1),
            ("something_new", d0, 7),
        ]
        .into_iter()
        .map(|(m, d, v)| (m.to_owned(), d, v))
        .collect();
        let levels: Vec<(String, i64)> = [
            ("members", 4),
            ("consent:marketing_offers:push", 3),
            ("consent:marketing_offers:email", 0),
        ]
        .into_iter()
        .map(|(m, v)| (m.to_owned(), v))
        .collect();
        let r = KpiReport::from_counters(d0, d0 + 2, None, &rows, 125, &levels);
        assert_eq!(r.members, 4);
        assert_eq!(
            r.consent_opt_in,
            [ConsentOptIn {
                purpose: "marketing_offers".into(),
                channel: "push".into(),
                members: 3,
                rate: Some(0.75)
            }]
        );
        assert_eq!(r.days.len(), 3);
        assert_eq!(r.from, "2026-09-21");
        assert_eq!((r.days[0].receipts, r.days[1].points_spent), (3, -20));
        assert_eq!(r.totals.revenue_cents, 9_000);
        assert_eq!(r.member_revenue_share, Some(6_000.0 / 9_000.0));
        assert_eq!(
            (r.average_basket_cents, r.member_average_basket_cents),
            (Some(3_000), Some(3_000))
        );
        assert_eq!(r.points_liability, 125);
        assert_eq!(r.breakage_rate, Some(0.25));
        assert_eq!(
            r.coupons,
            [CouponFunnel {
                offer_id: "of-1".into(),
                issued: 4,
                clipped: 3,
                redeemed: 1
            }]
        );
        let csv = r.csv();
        assert_eq!(csv.lines().count(), 4);
        assert!(
            csv.lines()
                .nth(1)
                .unwrap()
                .starts_with("2026-09-21,2,3,2,9000,6000,60,")
        );
        let empty = KpiReport::from_counters(d0, d0, Some("st-1".into()), &[], 0, &[]);
        assert_eq!(
            (
                empty.member_revenue_share,
                empty.average_basket_cents,
                empty.breakage_rate
            ),
            (None, None, None)
        );
    }
}
