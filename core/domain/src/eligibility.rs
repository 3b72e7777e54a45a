//! Whether a member may have, buy or use an offer: the programme's rules, written once.
//!
//! The phone runs these functions to show what is available (over its offer index, with labels
//! interned as numbers) and the server runs the very same functions (over the catalog's strings)
//! as the authority at clip, purchase with points, issue and redemption, online or reported by an
//! offline till. A till checks offline the part a coupon carries (shop, shop tags, dates, days and
//! hours). A refusal names the rule that refused, so a problem document can say which.
//!
//! The member's interests are not here: they are a display preference (the phone shows the
//! offers of the categories the member chose), not a rule of the programme.

use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogError, Offer, OfferChannel, parse_instant};

/// Which rule refused an offer. `rule()` is the stable name problem documents carry. No variant
/// holds text: the phone's offer index refuses thousands of candidates per query, without
/// allocating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Refusal {
    /// The offer is for the website only: no coupon for a shop.
    #[error("the offer is online only")]
    Channel,
    /// A reward is bought with points, never clipped.
    #[error("the offer is a reward: buy it with points")]
    IsReward,
    /// An offer without a price in points cannot be bought with them.
    #[error("the offer is not a reward")]
    NotReward,
    /// Before the offer starts (milliseconds since the epoch).
    #[error("the offer starts at {}", crate::rfc3339_ms(*valid_from_ms))]
    NotStarted { valid_from_ms: i64 },
    /// After the offer ended (milliseconds since the epoch).
    #[error("the offer ended at {}", crate::rfc3339_ms(*valid_to_ms))]
    Ended { valid_to_ms: i64 },
    /// The member's tier is not one the offer is for.
    #[error("the offer is for other tiers")]
    Tier,
    /// The member is in none of the offer's segments.
    #[error("the offer is for other segments")]
    Segment,
    /// The member used the offer as often as it allows.
    #[error("used {limit} times already, the most the offer allows")]
    PerMemberLimit { limit: u32 },
    /// Not on this day of the week (in the shop's time zone).
    #[error("not valid on this day of the week")]
    Day,
    /// Outside the offer's hours (in the shop's time zone).
    #[error("not valid at this time of day")]
    Hours,
    /// Not valid in this shop (neither named, nor carrying one of the offer's shop tags).
    #[error("not valid in this shop")]
    Shop,
}

impl Refusal {
    /// The rule's stable name.
    pub fn rule(&self) -> &'static str {
        match self {
            Refusal::Channel => "channel",
            Refusal::IsReward | Refusal::NotReward => "reward",
            Refusal::NotStarted { .. } => "not_started",
            Refusal::Ended { .. } => "ended",
            Refusal::Tier => "tier",
            Refusal::Segment => "segment",
            Refusal::PerMemberLimit { .. } => "per_member_limit",
            Refusal::Day => "day",
            Refusal::Hours => "hours",
            Refusal::Shop => "shop",
        }
    }
}

/// An offer's rules, over labels of type `L` (`&str` on the server, interned ids on the phone).
#[derive(Debug, Clone, Copy)]
pub struct Terms<'a, L> {
    pub from_ms: i64,
    /// Valid up to and including this instant.
    pub to_ms: i64,
    /// Usable in a shop (not an online-only offer).
    pub in_store: bool,
    /// Bought with points.
    pub reward: bool,
    /// Bit d set: valid on weekday d (1 = Monday); 0: every day.
    pub days: u8,
    /// Local minutes `[from, to)`; a span ending before it starts runs past midnight.
    pub hours: Option<(u16, u16)>,
    pub tiers: &'a [L],
    pub segments: &'a [L],
    pub per_member_limit: Option<u32>,
}

/// What the rules need to know about a member.
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a, L> {
    pub tier: Option<L>,
    pub segments: &'a [L],
    /// How many of the offer's coupons the member redeemed.
    pub used: u32,
}

/// Days of the week as a bit set (bit d: weekday d, 1 = Monday).
pub fn day_mask(days: &[u8]) -> u8 {
    days.iter()
        .filter(|d| (1..=7).contains(*d))
        .fold(0u8, |m, d| m | (1 << d))
}

/// `HH:MM` as minutes since midnight.
pub fn minutes(hhmm: &str) -> Option<u16> {
    let (h, m) = hhmm.split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// The weekday (1 = Monday) and minute of the day at `at_ms` in `zone`.
pub fn local_time(zone: &jiff::tz::TimeZone, at_ms: i64) -> (u8, u16) {
    let t = jiff::Timestamp::from_millisecond(at_ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(zone.clone());
    let day = t.weekday().to_monday_one_offset() as u8;
    (day, (t.hour() as u16) * 60 + t.minute() as u16)
}

/// Whether minute `t` of weekday `day` falls in `spans` of `(day, from, to)`; a span ending
/// before it starts runs past midnight into the next day.
pub fn in_spans(spans: &[(u8, u16, u16)], day: u8, t: u16) -> bool {
    let yesterday = if day == 1 { 7 } else { day - 1 };
    spans.iter().any(|&(d, open, close)| {
        if close > open {
            d == day && t >= open && t < close
        } else {
            (d == day && t >= open) || (d == yesterday && t < close)
        }
    })
}

/// The offer's dates at `at_ms`.
pub fn check_dates<L>(terms: &Terms<'_, L>, at_ms: i64) -> Result<(), Refusal> {
    if at_ms < terms.from_ms {
        return Err(Refusal::NotStarted {
            valid_from_ms: terms.from_ms,
        });
    }
    if at_ms > terms.to_ms {
        return Err(Refusal::Ended {
            valid_to_ms: terms.to_ms,
        });
    }
    Ok(())
}

/// The rules about who: tier, segments and the per-member limit.
pub fn check_member<L: PartialEq>(
    terms: &Terms<'_, L>,
    member: &Holder<'_, L>,
) -> Result<(), Refusal> {
    if !terms.tiers.is_empty()
        && !member
            .tier
            .as_ref()
            .is_some_and(|t| terms.tiers.contains(t))
    {
        return Err(Refusal::Tier);
    }
    if !terms.segments.is_empty() && !terms.segments.iter().any(|s| member.segments.contains(s)) {
        return Err(Refusal::Segment);
    }
    check_limit(terms, member.used)
}

/// The per-member limit, after `used` uses.
pub fn check_limit<L>(terms: &Terms<'_, L>, used: u32) -> Result<(), Refusal> {
    match terms.per_member_limit {
        Some(limit) if used >= limit => Err(Refusal::PerMemberLimit { limit }),
        _ => Ok(()),
    }
}

/// The offer's days of the week, and its hours when `hours`, at local `(day, minute)`.
pub fn check_local<L>(terms: &Terms<'_, L>, local: (u8, u16), hours: bool) -> Result<(), Refusal> {
    check_days_hours(terms.days, terms.hours.filter(|_| hours), local)
}

/// Days of the week (a [`day_mask`], 0: every day) and local hours at `(day, minute)`. Hours
/// that run past midnight belong to the day they start: Monday's 22:00–02:00 includes Tuesday
/// 01:00 when the offer is valid on Mondays.
pub fn check_days_hours(
    days: u8,
    hours: Option<(u16, u16)>,
    (day, t): (u8, u16),
) -> Result<(), Refusal> {
    let allowed = |d: u8| days == 0 || days & (1 << d) != 0;
    match hours {
        None if allowed(day) => Ok(()),
        None => Err(Refusal::Day),
        Some((from, to)) => {
            let yesterday = if day == 1 { 7 } else { day - 1 };
            if allowed(day) && in_spans(&[(day, from, to)], day, t) {
                return Ok(());
            }
            if allowed(yesterday) && in_spans(&[(yesterday, from, to)], day, t) {
                return Ok(());
            }
            Err(if allowed(day) {
                Refusal::Hours
            } else {
                Refusal::Day
            })
        }
    }
}

/// Whether `member` may use the offer in a shop at `at_ms` (local `(day, minute)` there): the
/// offers a phone shows at a shop, and what a redemption needs besides the shop itself.
pub fn check_use<L: PartialEq>(
    terms: &Terms<'_, L>,
    member: &Holder<'_, L>,
    at_ms: i64,
    local: impl FnOnce() -> (u8, u16),
    hours: bool,
) -> Result<(), Refusal> {
    if !terms.in_store {
        return Err(Refusal::Channel);
    }
    check_dates(terms, at_ms)?;
    check_member(terms, member)?;
    if terms.days != 0 || (hours && terms.hours.is_some()) {
        check_local(terms, local(), hours)?;
    }
    Ok(())
}

/// Whether `member` may clip the offer (a coupon for a shop) at `at_ms`. The days and hours are
/// not checked: a coupon clipped on Sunday is used on Monday.
pub fn check_clip<L: PartialEq>(
    terms: &Terms<'_, L>,
    member: &Holder<'_, L>,
    at_ms: i64,
) -> Result<(), Refusal> {
    if !terms.in_store {
        return Err(Refusal::Channel);
    }
    if terms.reward {
        return Err(Refusal::IsReward);
    }
    check_dates(terms, at_ms)?;
    check_member(terms, member)
}

/// Whether `member` may buy the reward at `at_ms` (the points are checked by the ledger).
pub fn check_purchase<L: PartialEq>(
    terms: &Terms<'_, L>,
    member: &Holder<'_, L>,
    at_ms: i64,
) -> Result<(), Refusal> {
    if !terms.reward {
        return Err(Refusal::NotReward);
    }
    check_dates(terms, at_ms)?;
    check_member(terms, member)
}

/// Where a coupon is redeemed: a shop (its id, tags and time zone), or the website.
#[derive(Debug, Clone, Copy)]
pub enum Place<'a, T> {
    Shop {
        id: &'a str,
        tags: &'a [T],
        zone: &'a jiff::tz::TimeZone,
    },
    Website,
}

/// Whether a coupon of the offer (for `store_ids` and `store_tags`) may be redeemed at `at_ms`
/// at `place`, after `used` earlier uses: its dates and the per-member limit; in a shop, an
/// in-store offer, one of its shops or tags, its days and hours in the shop's zone. Tier and
/// segment were the rule when the coupon was issued: a member keeps a coupon clipped as Gold.
pub fn check_redemption<L, S: AsRef<str>, T: AsRef<str>>(
    terms: &Terms<'_, L>,
    store_ids: &[S],
    store_tags: &[S],
    used: u32,
    at_ms: i64,
    place: Place<'_, T>,
) -> Result<(), Refusal> {
    check_dates(terms, at_ms)?;
    check_limit(terms, used)?;
    let Place::Shop { id, tags, zone } = place else {
        return Ok(());
    };
    if !terms.in_store {
        return Err(Refusal::Channel);
    }
    targets_shop(store_ids, store_tags, id, tags)?;
    check_local(terms, local_time(zone, at_ms), true)
}

/// Whether an offer (or a coupon) for `store_ids` and `store_tags` (both empty: every shop) is
/// valid in the shop `shop_id` carrying `shop_tags`.
pub fn targets_shop<S: AsRef<str>, T: AsRef<str>>(
    store_ids: &[S],
    store_tags: &[S],
    shop_id: &str,
    shop_tags: &[T],
) -> Result<(), Refusal> {
    if store_ids.is_empty() && store_tags.is_empty() {
        return Ok(());
    }
    let named = store_ids.iter().any(|s| s.as_ref() == shop_id);
    let tagged = store_tags
        .iter()
        .any(|t| shop_tags.iter().any(|s| s.as_ref() == t.as_ref()));
    if named || tagged {
        Ok(())
    } else {
        Err(Refusal::Shop)
    }
}

/// An offer's rules over its own strings.
#[derive(Debug, Clone)]
pub struct OfferTerms<'a> {
    offer: &'a Offer,
    from_ms: i64,
    to_ms: i64,
    days: u8,
    hours: Option<(u16, u16)>,
}

impl<'a> OfferTerms<'a> {
    /// The offer's rules (its dates parsed once).
    pub fn of(offer: &'a Offer) -> Result<Self, CatalogError> {
        Ok(OfferTerms {
            from_ms: parse_instant("offer.valid_from", &offer.valid_from)?.as_millisecond(),
            to_ms: parse_instant("offer.valid_to", &offer.valid_to)?.as_millisecond(),
            days: day_mask(&offer.days),
            hours: match (&offer.hours_from, &offer.hours_to) {
                (Some(a), Some(b)) => minutes(a).zip(minutes(b)),
                _ => None,
            },
            offer,
        })
    }

    pub fn terms(&self) -> Terms<'a, String> {
        Terms {
            from_ms: self.from_ms,
            to_ms: self.to_ms,
            in_store: self.offer.channel != OfferChannel::Online,
            reward: self.offer.points_cost.is_some(),
            days: self.days,
            hours: self.hours,
            tiers: &self.offer.tiers,
            segments: &self.offer.segments,
            per_member_limit: self.offer.per_member_limit,
        }
    }
}

/// A shop as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShopFacts {
    pub store_id: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// IANA time zone; days and hours of offers are in it.
    pub timezone: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms<'a>(tiers: &'a [&'a str], segments: &'a [&'a str]) -> Terms<'a, &'a str> {
        Terms {
            from_ms: 1_000,
            to_ms: 2_000,
            in_store: true,
            reward: false,
            days: 0,
            hours: None,
            tiers,
            segments,
            per_member_limit: Some(1),
        }
    }

    fn member<'a>(
        tier: Option<&'a str>,
        segments: &'a [&'a str],
        used: u32,
    ) -> Holder<'a, &'a str> {
        Holder {
            tier,
            segments,
            used,
        }
    }

    #[test]
    fn each_rule_refuses_with_its_name() {
        let t = terms(&["gold"], &["students"]);
        assert_eq!(
            check_clip(&t, &member(Some("gold"), &["students"], 0), 1_500),
            Ok(())
        );
        assert_eq!(
            check_clip(&t, &member(Some("base"), &["students"], 0), 1_500),
            Err(Refusal::Tier)
        );
        assert_eq!(
            check_clip(&t, &member(None, &["students"], 0), 1_500),
            Err(Refusal::Tier)
        );
        assert_eq!(
            check_clip(&t, &member(Some("gold"), &["other"], 0), 1_500),
            Err(Refusal::Segment)
        );
        assert_eq!(
            check_clip(&t, &member(Some("gold"), &["students"], 1), 1_500),
            Err(Refusal::PerMemberLimit { limit: 1 })
        );
        let early = check_clip(&t, &member(Some("gold"), &["students"], 0), 999).unwrap_err();
        assert_eq!(early.rule(), "not_started");
        let late = check_clip(&t, &member(Some("gold"), &["students"], 0), 2_001).unwrap_err();
        assert_eq!(late.rule(), "ended");
        // Both ends are inclusive, as a coupon's expiry is.
        assert!(check_clip(&t, &member(Some("gold"), &["students"], 0), 2_000).is_ok());
        let online = Terms {
            in_store: false,
            ..t
        };
        assert_eq!(
            check_clip(&online, &member(Some("gold"), &["students"], 0), 1_500),
            Err(Refusal::Channel)
        );
        let reward = Terms { reward: true, ..t };
        assert_eq!(
            check_clip(&reward, &member(Some("gold"), &["students"], 0), 1_500)
                .unwrap_err()
                .rule(),
            "reward"
        );
        assert!(check_purchase(&reward, &member(Some("gold"), &["students"], 0), 1_500).is_ok());
        assert_eq!(
            check_purchase(&t, &member(Some("gold"), &["students"], 0), 1_500)
                .unwrap_err()
                .rule(),
            "reward"
        );
    }

    #[test]
    fn days_and_hours_in_local_time() {
        let monday_mornings = Terms {
            days: day_mask(&[1]),
            hours: Some((8 * 60, 12 * 60)),
            ..terms(&[], &[])
        };
        let m = member(None, &[], 0);
        assert_eq!(
            check_use(&monday_mornings, &m, 1_500, || (1, 9 * 60), true),
            Ok(())
        );
        assert_eq!(
            check_use(&monday_mornings, &m, 1_500, || (2, 9 * 60), true),
            Err(Refusal::Day)
        );
        assert_eq!(
            check_use(&monday_mornings, &m, 1_500, || (1, 13 * 60), true),
            Err(Refusal::Hours)
        );
        // Hours are not checked where the caller does not ask (offers near me show the day's).
        assert_eq!(
            check_use(&monday_mornings, &m, 1_500, || (1, 13 * 60), false),
            Ok(())
        );
        // Past midnight: 22:00-02:00 on Monday includes Tuesday 01:00.
        let late = Terms {
            hours: Some((22 * 60, 2 * 60)),
            days: 0,
            ..monday_mornings
        };
        assert_eq!(check_use(&late, &m, 1_500, || (2, 60), true), Ok(()));
        let paris = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        // 2026-11-30T08:30:00Z is a Monday, 09:30 in Paris.
        let at = "2026-11-30T08:30:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond();
        assert_eq!(local_time(&paris, at), (1, 9 * 60 + 30));
    }

    #[test]
    fn shops_by_id_or_tag() {
        let none: [&str; 0] = [];
        assert!(targets_shop(&none, &none, "st-1", &none).is_ok());
        assert!(targets_shop(&["st-1"], &[], "st-1", &none).is_ok());
        assert_eq!(
            targets_shop(&["st-1"], &[], "st-2", &none),
            Err(Refusal::Shop)
        );
        assert!(targets_shop(&[], &["outlet"], "st-2", &["city", "outlet"]).is_ok());
        assert_eq!(
            targets_shop(&[], &["outlet"], "st-2", &["city"]),
            Err(Refusal::Shop)
        );
    }
}
