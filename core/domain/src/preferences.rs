//! The member's preference centre, and the notification policy that applies it with consent.
//!
//! Preferences sync both ways field by field: the phone sends only the fields it changed, the
//! server applies each in the order it receives them (the last write wins per field), and the phone
//! takes the server's value for every field it has no unsent change to.

use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogError, check_id};
use crate::consent::{Channel, ConsentGate, Feature, Purpose};

/// At most this many notifications on a channel per calendar day and per week (Monday to Sunday)
/// in the member's time zone; none: no cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FrequencyCap {
    pub channel: Channel,
    pub per_day: Option<u32>,
    pub per_week: Option<u32>,
}

/// No push or SMS between `start` and `end` (local `HH:MM`; may span midnight).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    pub start: String,
    pub end: String,
}

/// What the member chose in the preference centre.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// Offer categories the member wants (`tea`, `pastry`…); empty: all of them.
    pub interests: Vec<String>,
    /// Channels the member prefers for offers; empty: any channel with consent.
    pub channels: Vec<Channel>,
    pub caps: Vec<FrequencyCap>,
    pub quiet_hours: Option<QuietHours>,
    /// IANA time zone of quiet hours and caps ("Europe/Paris").
    pub timezone: String,
    /// BCP 47 language tag ("fr-FR").
    pub language: String,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            interests: Vec::new(),
            channels: Vec::new(),
            caps: Vec::new(),
            quiet_hours: Some(QuietHours {
                start: "21:00".into(),
                end: "09:00".into(),
            }),
            timezone: "UTC".into(),
            language: "en".into(),
        }
    }
}

/// One changed field, as sent to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "field", rename_all = "snake_case", deny_unknown_fields)]
pub enum PreferenceChange {
    Interests {
        value: Vec<String>,
    },
    Channels {
        value: Vec<Channel>,
    },
    Caps {
        value: Vec<FrequencyCap>,
    },
    /// `null` turns quiet hours off; the value must be present.
    QuietHours {
        #[serde(deserialize_with = "present")]
        value: Option<QuietHours>,
    },
    Timezone {
        value: String,
    },
    Language {
        value: String,
    },
}

/// Deserialises as the type says, but refuses an absent value (serde would take a missing
/// `Option` as `None`).
fn present<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d)
}

impl PreferenceChange {
    pub fn field(&self) -> &'static str {
        match self {
            PreferenceChange::Interests { .. } => "interests",
            PreferenceChange::Channels { .. } => "channels",
            PreferenceChange::Caps { .. } => "caps",
            PreferenceChange::QuietHours { .. } => "quiet_hours",
            PreferenceChange::Timezone { .. } => "timezone",
            PreferenceChange::Language { .. } => "language",
        }
    }

    pub fn apply(&self, to: &mut Preferences) {
        match self.clone() {
            PreferenceChange::Interests { value: v } => to.interests = v,
            PreferenceChange::Channels { value: v } => to.channels = v,
            PreferenceChange::Caps { value: v } => to.caps = v,
            PreferenceChange::QuietHours { value: v } => to.quiet_hours = v,
            PreferenceChange::Timezone { value: v } => to.timezone = v,
            PreferenceChange::Language { value: v } => to.language = v,
        }
    }

    /// The fields where `new` differs from `old`.
    pub fn diff(old: &Preferences, new: &Preferences) -> Vec<PreferenceChange> {
        let mut out = Vec::new();
        if old.interests != new.interests {
            out.push(PreferenceChange::Interests {
                value: new.interests.clone(),
            });
        }
        if old.channels != new.channels {
            out.push(PreferenceChange::Channels {
                value: new.channels.clone(),
            });
        }
        if old.caps != new.caps {
            out.push(PreferenceChange::Caps {
                value: new.caps.clone(),
            });
        }
        if old.quiet_hours != new.quiet_hours {
            out.push(PreferenceChange::QuietHours {
                value: new.quiet_hours.clone(),
            });
        }
        if old.timezone != new.timezone {
            out.push(PreferenceChange::Timezone {
                value: new.timezone.clone(),
            });
        }
        if old.language != new.language {
            out.push(PreferenceChange::Language {
                value: new.language.clone(),
            });
        }
        out
    }

    pub fn validate(&self) -> Result<(), CatalogError> {
        let mut p = Preferences::default();
        self.apply(&mut p);
        p.validate()
    }
}

fn parse_hhmm(field: &'static str, s: &str) -> Result<jiff::civil::Time, CatalogError> {
    let bad = || CatalogError::new(field, "must be HH:MM, 00:00 to 23:59");
    if s.len() != 5 || s.as_bytes()[2] != b':' {
        return Err(bad());
    }
    let h: i8 = s[..2].parse().map_err(|_| bad())?;
    let m: i8 = s[3..].parse().map_err(|_| bad())?;
    jiff::civil::Time::new(h, m, 0, 0).map_err(|_| bad())
}

impl Preferences {
    pub fn validate(&self) -> Result<(), CatalogError> {
        if self.interests.len() > 50 {
            return Err(CatalogError::new(
                "preferences.interests",
                "has more than 50 entries",
            ));
        }
        for i in &self.interests {
            check_id("preferences.interests", i)?;
        }
        let mut seen = Vec::new();
        for c in &self.channels {
            if seen.contains(c) {
                return Err(CatalogError::new(
                    "preferences.channels",
                    "lists a channel twice",
                ));
            }
            seen.push(*c);
        }
        let mut capped = Vec::new();
        for cap in &self.caps {
            if capped.contains(&cap.channel) {
                return Err(CatalogError::new(
                    "preferences.caps",
                    "caps a channel twice",
                ));
            }
            capped.push(cap.channel);
            if cap.per_day.is_some_and(|n| n > 1000) || cap.per_week.is_some_and(|n| n > 5000) {
                return Err(CatalogError::new(
                    "preferences.caps",
                    "is above 1000 a day or 5000 a week",
                ));
            }
        }
        if let Some(q) = &self.quiet_hours {
            let start = parse_hhmm("preferences.quiet_hours.start", &q.start)?;
            let end = parse_hhmm("preferences.quiet_hours.end", &q.end)?;
            if start == end {
                return Err(CatalogError::new(
                    "preferences.quiet_hours",
                    "start and end are the same time",
                ));
            }
        }
        if jiff::tz::TimeZone::get(&self.timezone).is_err() || self.timezone.len() > 64 {
            return Err(CatalogError::new(
                "preferences.timezone",
                "must be an IANA time zone name",
            ));
        }
        let lang_ok = (2..=35).contains(&self.language.len())
            && self.language.split('-').all(|part| {
                (1..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric())
            })
            && self.language.split('-').next().is_some_and(|p| {
                p.bytes().all(|b| b.is_ascii_alphabetic()) && (2..=3).contains(&p.len())
            });
        if !lang_ok {
            return Err(CatalogError::new(
                "preferences.language",
                "must be a BCP 47 language tag",
            ));
        }
        Ok(())
    }
}

/// A notification the app (or a geofence event) would like to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct NotificationRequest {
    /// `MarketingOffers` or `GeolocatedOffers`.
    pub purpose: Purpose,
    /// `Push`, `Email`, `Sms` or `InApp`.
    pub channel: Channel,
    /// The offer's categories; empty: not about a category.
    pub categories: Vec<String>,
}

/// Whether a notification may be shown now, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum NotificationVerdict {
    /// Show it (it has been counted against the caps).
    Send,
    /// The member has not consented to this purpose on this channel (or to location).
    NoConsent { feature: Feature },
    /// The member prefers other channels.
    ChannelNotPreferred,
    /// None of its categories is among the member's interests.
    NotOfInterest,
    /// Within quiet hours; `until` is the RFC 3339 instant they end.
    QuietHours { until: String },
    /// The member's cap for the day or the week on this channel is reached.
    CapReached { per_day: bool },
    /// Not a notification purpose or channel.
    Unsupported,
}

/// Notifications already shown on the channel today and this week (member's time zone).
#[derive(Debug, Clone, Copy, Default)]
pub struct SentCounts {
    pub today: u32,
    pub this_week: u32,
}

/// The feature a notification needs.
pub fn notification_feature(purpose: Purpose, channel: Channel) -> Option<Feature> {
    match (purpose, channel) {
        (Purpose::GeolocatedOffers, Channel::Push) => Some(Feature::GeolocatedNotifications),
        (Purpose::MarketingOffers, Channel::Push) => Some(Feature::PushOffers),
        (Purpose::MarketingOffers, Channel::Email) => Some(Feature::EmailOffers),
        (Purpose::MarketingOffers, Channel::Sms) => Some(Feature::SmsOffers),
        (Purpose::MarketingOffers, Channel::InApp) => Some(Feature::InAppOffers),
        _ => None,
    }
}

/// Start of the local day and of the local week (Monday) containing `now`, in `tz`.
pub fn day_and_week_start(now: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> (i64, i64) {
    let local = now.to_zoned_datetime(tz.clone());
    let day = local
        .start_of_day()
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(now.as_millisecond());
    let back = i64::from(local.weekday().to_monday_zero_offset());
    let week = local
        .start_of_day()
        .and_then(|z| z.checked_sub(jiff::Span::new().days(back)))
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(day);
    (day, week)
}

/// The policy: consent first, then the member's preferences, then quiet hours and caps.
pub fn decide(
    request: &NotificationRequest,
    gate: ConsentGate,
    prefs: &Preferences,
    sent: SentCounts,
    now: jiff::Timestamp,
) -> NotificationVerdict {
    let Some(feature) = notification_feature(request.purpose, request.channel) else {
        return NotificationVerdict::Unsupported;
    };
    if !gate.permits(feature) {
        return NotificationVerdict::NoConsent { feature };
    }
    if !prefs.channels.is_empty() && !prefs.channels.contains(&request.channel) {
        return NotificationVerdict::ChannelNotPreferred;
    }
    if !prefs.interests.is_empty()
        && !request.categories.is_empty()
        && !request
            .categories
            .iter()
            .any(|c| prefs.interests.contains(c))
    {
        return NotificationVerdict::NotOfInterest;
    }
    let tz = jiff::tz::TimeZone::get(&prefs.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    if matches!(request.channel, Channel::Push | Channel::Sms)
        && let Some(q) = &prefs.quiet_hours
        && let (Ok(start), Ok(end)) = (parse_hhmm("start", &q.start), parse_hhmm("end", &q.end))
    {
        let local = now.to_zoned_datetime(tz.clone());
        let t = local.time();
        let inside = if start < end {
            t >= start && t < end
        } else {
            t >= start || t < end
        };
        if inside {
            let end_today = local.date().to_datetime(end);
            let end_at = if t < end {
                end_today
            } else {
                end_today
                    .checked_add(jiff::Span::new().days(1))
                    .unwrap_or(end_today)
            };
            let until = end_at
                .to_zoned_datetime(tz.clone())
                .map(|z| z.timestamp().to_string())
                .unwrap_or_default();
            return NotificationVerdict::QuietHours { until };
        }
    }
    if let Some(cap) = prefs.caps.iter().find(|c| c.channel == request.channel) {
        if cap.per_day.is_some_and(|n| sent.today >= n) {
            return NotificationVerdict::CapReached { per_day: true };
        }
        if cap.per_week.is_some_and(|n| sent.this_week >= n) {
            return NotificationVerdict::CapReached { per_day: false };
        }
    }
    NotificationVerdict::Send
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{ConsentRecord, ConsentSource, Decision};

    fn open_gate() -> ConsentGate {
        let records: Vec<ConsentRecord> = Purpose::ALL
            .iter()
            .flat_map(|p| Channel::ALL.iter().map(move |c| (*p, *c)))
            .enumerate()
            .map(|(i, (purpose, channel))| ConsentRecord {
                record_id: format!("r{i}"),
                member_id: "m".into(),
                purpose,
                channel,
                decision: Decision::Granted,
                text_version: "v1".into(),
                text_sha256: "0".repeat(64),
                decided_at: "2026-01-01T00:00:00Z".into(),
                effective_at: "2026-01-01T00:00:00Z".into(),
                recorded_at: None,
                source: ConsentSource::AppScreen,
                recorded_by: None,
                app_version: None,
            })
            .collect();
        ConsentGate::from_records(&records)
    }

    fn push(categories: &[&str]) -> NotificationRequest {
        NotificationRequest {
            purpose: Purpose::MarketingOffers,
            channel: Channel::Push,
            categories: categories.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn consent_comes_first() {
        let v = decide(
            &push(&[]),
            ConsentGate::CLOSED,
            &Preferences::default(),
            SentCounts::default(),
            at("2026-06-01T12:00:00Z"),
        );
        assert_eq!(
            v,
            NotificationVerdict::NoConsent {
                feature: Feature::PushOffers
            }
        );
    }

    #[test]
    fn quiet_hours_follow_the_member_time_zone_across_midnight() {
        let prefs = Preferences {
            timezone: "Europe/Paris".into(),
            ..Preferences::default()
        };
        // 20:30 UTC is 22:30 in Paris in June: quiet until 09:00 Paris = 07:00 UTC.
        let v = decide(
            &push(&[]),
            open_gate(),
            &prefs,
            SentCounts::default(),
            at("2026-06-01T20:30:00Z"),
        );
        assert_eq!(
            v,
            NotificationVerdict::QuietHours {
                until: "2026-06-02T07:00:00Z".into()
            }
        );
        let v = decide(
            &push(&[]),
            open_gate(),
            &prefs,
            SentCounts::default(),
            at("2026-06-02T06:30:00Z"),
        );
        assert_eq!(
            v,
            NotificationVerdict::QuietHours {
                until: "2026-06-02T07:00:00Z".into()
            }
        );
        let v = decide(
            &push(&[]),
            open_gate(),
            &prefs,
            SentCounts::default(),
            at("2026-06-02T07:00:00Z"),
        );
        assert_eq!(v, NotificationVerdict::Send);
        // E-mail is not interrupted by quiet hours.
        let mail = NotificationRequest {
            channel: Channel::Email,
            ..push(&[])
        };
        assert_eq!(
            decide(
                &mail,
                open_gate(),
                &prefs,
                SentCounts::default(),
                at("2026-06-01T20:30:00Z")
            ),
            NotificationVerdict::Send
        );
    }

    #[test]
    fn interests_channels_and_caps() {
        let prefs = Preferences {
            interests: vec!["tea".into()],
            channels: vec![Channel::Push],
            caps: vec![FrequencyCap {
                channel: Channel::Push,
                per_day: Some(2),
                per_week: Some(5),
            }],
            quiet_hours: None,
            ..Preferences::default()
        };
        let noon = at("2026-06-01T12:00:00Z");
        let g = open_gate();
        assert_eq!(
            decide(&push(&["coffee"]), g, &prefs, SentCounts::default(), noon),
            NotificationVerdict::NotOfInterest
        );
        assert_eq!(
            decide(
                &push(&["coffee", "tea"]),
                g,
                &prefs,
                SentCounts::default(),
                noon
            ),
            NotificationVerdict::Send
        );
        let sms = NotificationRequest {
            channel: Channel::Sms,
            ..push(&[])
        };
        assert_eq!(
            decide(&sms, g, &prefs, SentCounts::default(), noon),
            NotificationVerdict::ChannelNotPreferred
        );
        assert_eq!(
            decide(
                &push(&[]),
                g,
                &prefs,
                SentCounts {
                    today: 2,
                    this_week: 2
                },
                noon
            ),
            NotificationVerdict::CapReached { per_day: true }
        );
        assert_eq!(
            decide(
                &push(&[]),
                g,
                &prefs,
                SentCounts {
                    today: 0,
                    this_week: 5
                },
                noon
            ),
            NotificationVerdict::CapReached { per_day: false }
        );
    }

    #[test]
    fn weeks_start_on_monday_local_time() {
        let tz = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        // Wednesday 2026-06-03 10:00 Paris.
        let (day, week) = day_and_week_start(at("2026-06-03T08:00:00Z"), &tz);
        assert_eq!(
            jiff::Timestamp::from_millisecond(day).unwrap(),
            at("2026-06-02T22:00:00Z")
        );
        assert_eq!(
            jiff::Timestamp::from_millisecond(week).unwrap(),
            at("2026-05-31T22:00:00Z")
        );
    }

    #[test]
    fn preferences_are_validated() {
        Preferences::default().validate().unwrap();
        let bad = |p: Preferences| p.validate().unwrap_err().field;
        assert_eq!(
            bad(Preferences {
                timezone: "Mars/Olympus".into(),
                ..Default::default()
            }),
            "preferences.timezone"
        );
        assert_eq!(
            bad(Preferences {
                language: "not a tag".into(),
                ..Default::default()
            }),
            "preferences.language"
        );
        assert_eq!(
            bad(Preferences {
                quiet_hours: Some(QuietHours {
                    start: "25:00".into(),
                    end: "08:00".into()
                }),
                ..Default::default()
            }),
            "preferences.quiet_hours.start"
        );
        assert_eq!(
            bad(Preferences {
                channels: vec![Channel::Push, Channel::Push],
                ..Default::default()
            }),
            "preferences.channels"
        );
        assert_eq!(
            bad(Preferences {
                interests: vec!["no spaces".into()],
                ..Default::default()
            }),
            "preferences.interests"
        );
        Preferences {
            language: "fr-FR".into(),
            timezone: "Europe/Paris".into(),
            ..Default::default()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn a_change_without_its_value_is_refused() {
        let parse = |s: &str| serde_json::from_str::<PreferenceChange>(s);
        assert!(parse(r#"{"field":"quiet_hours"}"#).is_err());
        assert_eq!(
            parse(r#"{"field":"quiet_hours","value":null}"#).unwrap(),
            PreferenceChange::QuietHours { value: None }
        );
        assert!(parse(r#"{"field":"language","value":"fr","extra":1}"#).is_err());
    }

    #[test]
    fn a_diff_lists_only_changed_fields() {
        let a = Preferences::default();
        let b = Preferences {
            language: "fr".into(),
            interests: vec!["tea".into()],
            ..a.clone()
        };
        let d = PreferenceChange::diff(&a, &b);
        assert_eq!(
            d.iter().map(|c| c.field()).collect::<Vec<_>>(),
            ["interests", "language"]
        );
        let mut c = a.clone();
        for change in &d {
            change.apply(&mut c);
        }
        assert_eq!(c, b);
    }
}
