//! Journeys (issue #19): a push the programme sends a member when something happens to them —
//! the welcome after enrolment, their birthday, points about to expire, a tier about to drop,
//! lapsing (by the churn model's segment) — each at most once per occurrence, and only within
//! the member's consent, preferences, quiet hours and caps ([`crate::preferences::decide`], the
//! policy the phone applies to what it shows), a cooldown per journey and the programme's cap
//! per member and week.
//!
//! The server finds who enters a journey (its storage), keeps each entry until it is due, and
//! asks [`decide`] what to do with it when it is: send it, wait (quiet hours, a cap reached), or
//! give it up (no consent, the trigger no longer holds, too late). See docs/journeys.md.

use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogError, check_id};
use crate::consent::{Channel, ConsentGate, Purpose};
use crate::preferences::{
    NotificationRequest, NotificationVerdict, Preferences, SentCounts, day_and_week_start,
};
use crate::text::{Lines, clean};

const DAY_MS: i64 = 86_400_000;

/// What starts a journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JourneyKind {
    /// `delay_minutes` after enrolment (members enrolled in the week before).
    Welcome,
    /// `days_before` the member's birthday (`MM-DD`; 29 February on the 28th in other years).
    Birthday,
    /// Points expiring within `days_before` days.
    PointsExpiring,
    /// The tier's review within `days_before` days, with qualifying points short of keeping it.
    TierDropping,
    /// In `segment` of the latest analysis (`likely_to_churn`: by churn risk).
    Lapsed,
}

impl JourneyKind {
    pub const ALL: [JourneyKind; 5] = [
        JourneyKind::Welcome,
        JourneyKind::Birthday,
        JourneyKind::PointsExpiring,
        JourneyKind::TierDropping,
        JourneyKind::Lapsed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JourneyKind::Welcome => "welcome",
            JourneyKind::Birthday => "birthday",
            JourneyKind::PointsExpiring => "points_expiring",
            JourneyKind::TierDropping => "tier_dropping",
            JourneyKind::Lapsed => "lapsed",
        }
    }

    pub fn parse(s: &str) -> Option<JourneyKind> {
        JourneyKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The placeholders its texts may use.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            JourneyKind::PointsExpiring => {
                &["name", "points", "tier", "expiring_points", "expires_on"]
            }
            JourneyKind::TierDropping => &["name", "points", "tier", "points_to_keep", "review_on"],
            _ => &["name", "points", "tier"],
        }
    }
}

/// One journey as the operator sets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Journey {
    pub kind: JourneyKind,
    pub enabled: bool,
    /// The catalog's offer the push carries (the phone shows and keeps it, as a campaign's).
    pub offer_id: String,
    /// The notification's title and body; `{name}`, `{points}`, `{tier}` and the kind's own
    /// placeholders (`{expiring_points}`, `{expires_on}`; `{points_to_keep}`, `{review_on}`)
    /// are filled in per member.
    pub title: String,
    pub body: String,
    /// Birthday, points expiring, tier dropping: how many days ahead (0–60).
    #[serde(default)]
    pub days_before: u32,
    /// Welcome: how long after enrolment (0–10,080 minutes), to give the app time to ask for
    /// consent and register its push token.
    #[serde(default)]
    pub delay_minutes: u32,
    /// Lapsed: the analytics segment (a named one, or `rfm:<class>`); absent: `likely_to_churn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
}

impl Journey {
    /// The analytics segment a lapsed journey reads.
    pub fn segment(&self) -> &str {
        self.segment.as_deref().unwrap_or("likely_to_churn")
    }
}

/// Every journey, and the limits across them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JourneySettings {
    pub journeys: Vec<Journey>,
    /// At most this many journey pushes to a member in any 7 days, all journeys together (1–14).
    pub max_per_member_per_week: u32,
    /// The same journey at most once in this many days to a member (1–365).
    pub cooldown_days: u32,
}

impl Default for JourneySettings {
    fn default() -> Self {
        JourneySettings {
            journeys: Vec::new(),
            max_per_member_per_week: 2,
            cooldown_days: 30,
        }
    }
}

impl JourneySettings {
    /// Refuses what the server would not send: a kind twice, a bad offer id, texts that are not
    /// clean display text or name an unknown placeholder, values out of range. Cleans the texts.
    pub fn clean(&mut self) -> Result<(), CatalogError> {
        if !(1..=14).contains(&self.max_per_member_per_week) {
            return Err(CatalogError::new(
                "journeys.max_per_member_per_week",
                "must be 1 to 14",
            ));
        }
        if !(1..=365).contains(&self.cooldown_days) {
            return Err(CatalogError::new(
                "journeys.cooldown_days",
                "must be 1 to 365",
            ));
        }
        let mut seen = Vec::new();
        for j in &mut self.journeys {
            if seen.contains(&j.kind) {
                return Err(CatalogError::new(
                    "journeys.kind",
                    format!("{} is set twice", j.kind.as_str()),
                ));
            }
            seen.push(j.kind);
            check_id("journey.offer_id", &j.offer_id)?;
            clean("journey.title", &mut j.title, 200, true, Lines::One)?;
            clean("journey.body", &mut j.body, 1000, true, Lines::Several)?;
            for (field, text) in [("journey.title", &j.title), ("journey.body", &j.body)] {
                check_placeholders(field, text, j.kind)?;
            }
            if j.days_before > 60 {
                return Err(CatalogError::new("journey.days_before", "must be 0 to 60"));
            }
            if j.delay_minutes > 7 * 24 * 60 {
                return Err(CatalogError::new(
                    "journey.delay_minutes",
                    "must be 0 to 10080 (a week)",
                ));
            }
            if j.kind != JourneyKind::Lapsed && j.segment.is_some() {
                return Err(CatalogError::new(
                    "journey.segment",
                    "only a lapsed journey reads a segment",
                ));
            }
            if let Some(s) = &j.segment {
                check_id("journey.segment", s.strip_prefix("rfm:").unwrap_or(s))?;
            }
        }
        Ok(())
    }

    pub fn journey(&self, kind: JourneyKind) -> Option<&Journey> {
        self.journeys.iter().find(|j| j.kind == kind)
    }
}

/// The placeholders of `text`: `{word}`; a `{` that opens none is refused.
fn placeholders(field: &'static str, text: &str) -> Result<Vec<String>, CatalogError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find(['{', '}']) {
        let after = &rest[open + 1..];
        if rest[open..].starts_with('}') {
            return Err(CatalogError::new(field, "has a } that closes nothing"));
        }
        let Some(close) = after.find('}') else {
            return Err(CatalogError::new(field, "has a { that is not closed"));
        };
        let name = &after[..close];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(CatalogError::new(
                field,
                format!("{{{name}}} is not a placeholder (lower-case letters and _)"),
            ));
        }
        out.push(name.to_owned());
        rest = &after[close + 1..];
    }
    Ok(out)
}

fn check_placeholders(
    field: &'static str,
    text: &str,
    kind: JourneyKind,
) -> Result<(), CatalogError> {
    for name in placeholders(field, text)? {
        if !kind.placeholders().contains(&name.as_str()) {
            return Err(CatalogError::new(
                field,
                format!(
                    "{{{name}}} is not known to a {} journey (it knows {})",
                    kind.as_str(),
                    kind.placeholders()
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// What a member's texts are filled in with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    pub name: String,
    pub points: u64,
    pub tier: String,
    pub expiring_points: u64,
    /// `YYYY-MM-DD`.
    pub expires_on: String,
    pub points_to_keep: u64,
    /// `YYYY-MM-DD`.
    pub review_on: String,
}

/// `text` with its placeholders filled in (a text that passed [`JourneySettings::clean`]).
pub fn render(text: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        match &after[..close] {
            "name" => out.push_str(&vars.name),
            "points" => out.push_str(&vars.points.to_string()),
            "tier" => out.push_str(&vars.tier),
            "expiring_points" => out.push_str(&vars.expiring_points.to_string()),
            "expires_on" => out.push_str(&vars.expires_on),
            "points_to_keep" => out.push_str(&vars.points_to_keep.to_string()),
            "review_on" => out.push_str(&vars.review_on),
            other => {
                out.push('{');
                out.push_str(other);
                out.push('}');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The occurrence an entry found at `now_ms` belongs to: a member enters a journey once per
/// occurrence (the welcome once, the birthday once a year, the others once per cooldown
/// period), so that a trigger that holds day after day makes one entry, not one a day.
pub fn occurrence(kind: JourneyKind, now_ms: i64, cooldown_days: u32) -> String {
    match kind {
        JourneyKind::Welcome => "once".into(),
        JourneyKind::Birthday => crate::rfc3339_ms(now_ms).get(..4).unwrap_or("").to_owned(),
        _ => format!(
            "p{}",
            now_ms.div_euclid(DAY_MS) / i64::from(cooldown_days.max(1))
        ),
    }
}

/// The birthdays (`MM-DD`) that fall `days_before` days after the UTC day of `now_ms`: one,
/// and 29 February with 28 February in years without it.
pub fn birthdays_on(now_ms: i64, days_before: u32) -> Vec<String> {
    let Some(day) = jiff::Timestamp::from_millisecond(now_ms)
        .ok()
        .map(|t| t.to_zoned_datetime(jiff::tz::TimeZone::UTC).date())
        .and_then(|d| {
            d.checked_add(jiff::Span::new().days(i64::from(days_before)))
                .ok()
        })
    else {
        return vec![];
    };
    let mut out = vec![format!("{:02}-{:02}", day.month(), day.day())];
    if day.month() == 2 && day.day() == 28 && !day.in_leap_year() {
        out.push("02-29".into());
    }
    out
}

/// Why an entry waits or was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The journey is off (or gone) since the member entered it.
    Disabled,
    /// Its time passed (waiting for quiet hours or a cap took it past its end).
    TooLate,
    /// The same journey reached the member within the cooldown.
    Cooldown,
    /// No consent to offers by push.
    NoConsent,
    /// The member prefers other channels.
    ChannelNotPreferred,
    /// The offer's categories are none of the member's interests.
    NotOfInterest,
    /// Within the member's quiet hours.
    QuietHours,
    /// The member's own cap for the day or the week on push.
    MemberCap,
    /// The programme's cap per member and week.
    ProgrammeCap,
    /// The trigger no longer holds (points spent, the tier kept, a purchase since).
    Resolved,
    /// The journey's offer is not in the catalog or no longer valid.
    OfferUnavailable,
    /// The member has no device with a push token.
    NoDevice,
    /// The message could not be built within what push services carry.
    Undeliverable,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Disabled => "disabled",
            Reason::TooLate => "too_late",
            Reason::Cooldown => "cooldown",
            Reason::NoConsent => "no_consent",
            Reason::ChannelNotPreferred => "channel_not_preferred",
            Reason::NotOfInterest => "not_of_interest",
            Reason::QuietHours => "quiet_hours",
            Reason::MemberCap => "member_cap",
            Reason::ProgrammeCap => "programme_cap",
            Reason::Resolved => "resolved",
            Reason::OfferUnavailable => "offer_unavailable",
            Reason::NoDevice => "no_device",
            Reason::Undeliverable => "undeliverable",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        use Reason::*;
        [
            Disabled,
            TooLate,
            Cooldown,
            NoConsent,
            ChannelNotPreferred,
            NotOfInterest,
            QuietHours,
            MemberCap,
            ProgrammeCap,
            Resolved,
            OfferUnavailable,
            NoDevice,
            Undeliverable,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// What to do with a due entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JourneyDecision {
    Send,
    /// Look at it again at `until_ms`.
    Defer {
        until_ms: i64,
        reason: Reason,
    },
    /// Never send it.
    Skip {
        reason: Reason,
    },
}

/// What the server knows about a due entry and the member's journey pushes.
#[derive(Debug, Clone, Default)]
pub struct EntryFacts {
    /// After it the entry is not sent.
    pub expires_ms: i64,
    /// Whether the trigger still holds now (points still expiring, tier still short…).
    pub still_holds: bool,
    /// The offer is in the catalog and valid now.
    pub offer_valid: bool,
    /// The offer's categories.
    pub categories: Vec<String>,
    /// When each journey push (any journey) reached the member in the last
    /// `max(cooldown, 7)` days, with its journey.
    pub sent: Vec<(JourneyKind, i64)>,
}

/// Send, wait or give up a due entry of `journey`, at `now_ms`: the journey on, not too late,
/// past the cooldown, the trigger still holding, the offer valid; then the member's policy
/// (consent, channels, interests, quiet hours, caps counted over journey pushes in the member's
/// day and week); then the programme's cap. A wait that would end after the entry's end gives
/// it up. The device check is the caller's.
pub fn decide(
    journey: Option<&Journey>,
    settings: &JourneySettings,
    facts: &EntryFacts,
    gate: ConsentGate,
    prefs: &Preferences,
    now_ms: i64,
) -> JourneyDecision {
    let skip = |reason| JourneyDecision::Skip { reason };
    let Some(journey) = journey.filter(|j| j.enabled) else {
        return skip(Reason::Disabled);
    };
    if now_ms > facts.expires_ms {
        return skip(Reason::TooLate);
    }
    let cooldown_from = now_ms - i64::from(settings.cooldown_days) * DAY_MS;
    if facts
        .sent
        .iter()
        .any(|(k, at)| *k == journey.kind && *at > cooldown_from)
    {
        return skip(Reason::Cooldown);
    }
    if !facts.still_holds {
        return skip(Reason::Resolved);
    }
    if !facts.offer_valid {
        return skip(Reason::OfferUnavailable);
    }
    let Ok(now) = jiff::Timestamp::from_millisecond(now_ms) else {
        return skip(Reason::TooLate);
    };
    let tz = jiff::tz::TimeZone::get(&prefs.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let (day_start, week_start) = day_and_week_start(now, &tz);
    let counts = SentCounts {
        today: facts.sent.iter().filter(|(_, at)| *at >= day_start).count() as u32,
        this_week: facts
            .sent
            .iter()
            .filter(|(_, at)| *at >= week_start)
            .count() as u32,
    };
    let request = NotificationRequest {
        purpose: Purpose::MarketingOffers,
        channel: Channel::Push,
        categories: facts.categories.clone(),
    };
    let wait = |until_ms: i64, reason| {
        if until_ms > facts.expires_ms {
            JourneyDecision::Skip {
                reason: Reason::TooLate,
            }
        } else {
            JourneyDecision::Defer { until_ms, reason }
        }
    };
    match crate::preferences::decide(&request, gate, prefs, counts, now) {
        NotificationVerdict::Send => {}
        NotificationVerdict::NoConsent { .. } | NotificationVerdict::Unsupported => {
            return skip(Reason::NoConsent);
        }
        NotificationVerdict::ChannelNotPreferred => return skip(Reason::ChannelNotPreferred),
        NotificationVerdict::NotOfInterest => return skip(Reason::NotOfInterest),
        NotificationVerdict::QuietHours { until } => {
            let until_ms = until
                .parse::<jiff::Timestamp>()
                .map(|t| t.as_millisecond())
                .unwrap_or(now_ms + DAY_MS);
            return wait(until_ms, Reason::QuietHours);
        }
        NotificationVerdict::CapReached { per_day } => {
            let local = now.to_zoned_datetime(tz.clone());
            let days = if per_day {
                1
            } else {
                7 - i64::from(local.weekday().to_monday_zero_offset())
            };
            let until_ms = local
                .start_of_day()
                .and_then(|d| d.checked_add(jiff::Span::new().days(days)))
                .map(|z| z.timestamp().as_millisecond())
                .unwrap_or(now_ms + DAY_MS);
            return wait(until_ms, Reason::MemberCap);
        }
    }
    let week_from = now_ms - 7 * DAY_MS;
    let mut in_week: Vec<i64> = facts
        .sent
        .iter()
        .map(|(_, at)| *at)
        .filter(|at| *at > week_from)
        .collect();
    if in_week.len() >= settings.max_per_member_per_week as usize {
        in_week.sort_unstable();
        // Once enough of them are more than 7 days old.
        let k = in_week.len() - settings.max_per_member_per_week as usize;
        return wait(in_week[k] + 7 * DAY_MS + 1, Reason::ProgrammeCap);
    }
    JourneyDecision::Send
}

/// The operator's view of a journey over a period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JourneyCounts {
    pub kind: String,
    pub enabled: bool,
    /// Members who entered it in the period.
    pub entered: u64,
    /// Of them: sent, waiting (due later: quiet hours, caps, the welcome's delay), given up.
    pub sent: u64,
    pub waiting: u64,
    pub skipped: u64,
    /// Given up or waiting, by reason (`no_consent`, `quiet_hours`…).
    pub reasons: std::collections::BTreeMap<String, u64>,
    /// Pushes handed to the push services for it, and those they refused.
    pub pushes: u64,
    pub failed_pushes: u64,
}

/// Every journey over the period since `since`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JourneyReport {
    /// RFC 3339: entries made since then.
    pub since: String,
    pub journeys: Vec<JourneyCounts>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{ConsentRecord, ConsentSource, Decision};

    const NOW: i64 = 1_781_000_000_000; // 2026-06-09T10:13:20Z, a Tuesday

    fn journey(kind: JourneyKind) -> Journey {
        Journey {
            kind,
            enabled: true,
            offer_id: "of-1".into(),
            title: "Hello {name}".into(),
            body: "You have {points} points".into(),
            days_before: 7,
            delay_minutes: 0,
            segment: None,
        }
    }

    fn gate(granted: bool) -> ConsentGate {
        let r = ConsentRecord {
            record_id: "r1".into(),
            member_id: "m".into(),
            purpose: Purpose::MarketingOffers,
            channel: Channel::Push,
            decision: if granted {
                Decision::Granted
            } else {
                Decision::Withdrawn
            },
            text_version: "v1".into(),
            text_sha256: "0".repeat(64),
            decided_at: crate::rfc3339_ms(NOW - DAY_MS),
            effective_at: crate::rfc3339_ms(NOW - DAY_MS),
            recorded_at: None,
            source: ConsentSource::AppScreen,
            recorded_by: None,
            app_version: None,
        };
        ConsentGate::from_records(&[r])
    }

    fn prefs() -> Preferences {
        Preferences {
            quiet_hours: None,
            timezone: "UTC".into(),
            ..Preferences::default()
        }
    }

    fn facts() -> EntryFacts {
        EntryFacts {
            expires_ms: NOW + 7 * DAY_MS,
            still_holds: true,
            offer_valid: true,
            categories: vec![],
            sent: vec![],
        }
    }

    fn run(j: &Journey, facts: &EntryFacts, gate_ok: bool, p: &Preferences) -> JourneyDecision {
        decide(
            Some(j),
            &JourneySettings::default(),
            facts,
            gate(gate_ok),
            p,
            NOW,
        )
    }

    #[test]
    fn a_due_entry_is_sent_within_consent_and_given_up_without() {
        let j = journey(JourneyKind::Birthday);
        assert_eq!(run(&j, &facts(), true, &prefs()), JourneyDecision::Send);
        assert_eq!(
            run(&j, &facts(), false, &prefs()),
            JourneyDecision::Skip {
                reason: Reason::NoConsent
            }
        );
        let mut off = j.clone();
        off.enabled = false;
        assert_eq!(
            run(&off, &facts(), true, &prefs()),
            JourneyDecision::Skip {
                reason: Reason::Disabled
            }
        );
        let resolved = EntryFacts {
            still_holds: false,
            ..facts()
        };
        assert_eq!(
            run(&j, &resolved, true, &prefs()),
            JourneyDecision::Skip {
                reason: Reason::Resolved
            }
        );
    }

    #[test]
    fn quiet_hours_defer_to_their_end_in_the_member_zone_unless_too_late() {
        let j = journey(JourneyKind::Welcome);
        let mut p = prefs();
        p.timezone = "Europe/Paris".into();
        // 10:13 UTC is 12:13 in Paris in June.
        p.quiet_hours = Some(crate::preferences::QuietHours {
            start: "12:00".into(),
            end: "14:00".into(),
        });
        let until = "2026-06-09T12:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond();
        assert_eq!(
            run(&j, &facts(), true, &p),
            JourneyDecision::Defer {
                until_ms: until,
                reason: Reason::QuietHours
            }
        );
        let short = EntryFacts {
            expires_ms: until - 1,
            ..facts()
        };
        assert_eq!(
            run(&j, &short, true, &p),
            JourneyDecision::Skip {
                reason: Reason::TooLate
            }
        );
    }

    #[test]
    fn caps_count_journey_pushes_and_the_cooldown_is_per_journey() {
        let j = journey(JourneyKind::PointsExpiring);
        let mut p = prefs();
        p.caps = vec![crate::preferences::FrequencyCap {
            channel: Channel::Push,
            per_day: Some(1),
            per_week: None,
        }];
        let today = EntryFacts {
            sent: vec![(JourneyKind::Welcome, NOW - 3_600_000)],
            ..facts()
        };
        let tomorrow = "2026-06-10T00:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond();
        assert_eq!(
            run(&j, &today, true, &p),
            JourneyDecision::Defer {
                until_ms: tomorrow,
                reason: Reason::MemberCap
            }
        );
        // The same journey 20 days ago: within the 30-day cooldown.
        let again = EntryFacts {
            sent: vec![(JourneyKind::PointsExpiring, NOW - 20 * DAY_MS)],
            ..facts()
        };
        assert_eq!(
            run(&j, &again, true, &prefs()),
            JourneyDecision::Skip {
                reason: Reason::Cooldown
            }
        );
        // Two other journeys this week: the programme's cap (2), until the older is 7 days old.
        let busy = EntryFacts {
            sent: vec![
                (JourneyKind::Welcome, NOW - 2 * DAY_MS),
                (JourneyKind::Birthday, NOW - DAY_MS),
            ],
            ..facts()
        };
        assert_eq!(
            run(&j, &busy, true, &prefs()),
            JourneyDecision::Defer {
                until_ms: NOW + 5 * DAY_MS + 1,
                reason: Reason::ProgrammeCap
            }
        );
    }

    #[test]
    fn settings_refuse_unknown_placeholders_and_repeats() {
        let mut s = JourneySettings {
            journeys: vec![journey(JourneyKind::Welcome)],
            ..JourneySettings::default()
        };
        s.clean().unwrap();
        s.journeys[0].body = "Your {expiring_points} points".into();
        assert_eq!(s.clean().unwrap_err().field, "journey.body");
        s.journeys[0].body = "Broken {name".into();
        assert!(s.clean().is_err());
        s.journeys[0].body = "ok".into();
        s.journeys.push(journey(JourneyKind::Welcome));
        assert_eq!(s.clean().unwrap_err().field, "journeys.kind");
        let mut e = JourneySettings {
            journeys: vec![journey(JourneyKind::PointsExpiring)],
            ..JourneySettings::default()
        };
        e.journeys[0].body = "{expiring_points} points end on {expires_on}".into();
        e.clean().unwrap();
        let vars = Vars {
            expiring_points: 120,
            expires_on: "2026-06-15".into(),
            ..Vars::default()
        };
        assert_eq!(
            render(&e.journeys[0].body, &vars),
            "120 points end on 2026-06-15"
        );
    }

    #[test]
    fn occurrences_and_birthdays() {
        assert_eq!(occurrence(JourneyKind::Birthday, NOW, 30), "2026");
        assert_eq!(occurrence(JourneyKind::Welcome, NOW, 30), "once");
        let a = occurrence(JourneyKind::Lapsed, NOW, 30);
        assert_eq!(a, occurrence(JourneyKind::Lapsed, NOW + DAY_MS, 30));
        assert_ne!(a, occurrence(JourneyKind::Lapsed, NOW + 30 * DAY_MS, 30));
        assert_eq!(birthdays_on(NOW, 0), vec!["06-09"]);
        let feb28 = "2027-02-21T08:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond();
        assert_eq!(birthdays_on(feb28, 7), vec!["02-28", "02-29"]);
    }
}
