//! Consent: the ledger's records, the state derived from them, and the gate every feature that
//! reaches the member asks first.
//!
//! These are wire types and pure functions shared by the phone and the server, so a decision is
//! derived the same way on both. A record is never changed once written (append-only tables on
//! both sides); the current state of a purpose on a channel is the latest record for it, ordered by
//! `effective_at` (the decision's time on the server's clock), a refusal winning a tie, then by
//! record id.

use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogError, check_id, parse_instant};

/// Why the programme wants to reach or profile the member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Offers and news about the programme.
    MarketingOffers,
    /// Offers triggered by being near or in a store.
    GeolocatedOffers,
    /// Ranking and choosing offers from what the member does.
    Personalisation,
    /// Measuring how the app is used.
    Analytics,
}

/// How the programme reaches the member (or, for `Location`, what it may use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Push,
    Email,
    Sms,
    InApp,
    /// The device's location (geofences).
    Location,
}

/// What the member decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Granted,
    /// Asked and refused.
    Denied,
    /// Granted before, taken back.
    Withdrawn,
}

/// Where the decision was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConsentSource {
    /// A screen of the app, by the member.
    AppScreen,
    /// The programme's website, by the member.
    Website,
    /// At a store counter, recorded by staff on the member's behalf.
    InStore,
    /// By phone with the call centre, recorded by staff on the member's behalf.
    CallCentre,
}

impl Purpose {
    pub const ALL: [Purpose; 4] = [
        Purpose::MarketingOffers,
        Purpose::GeolocatedOffers,
        Purpose::Personalisation,
        Purpose::Analytics,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::MarketingOffers => "marketing_offers",
            Purpose::GeolocatedOffers => "geolocated_offers",
            Purpose::Personalisation => "personalisation",
            Purpose::Analytics => "analytics",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Push,
        Channel::Email,
        Channel::Sms,
        Channel::InApp,
        Channel::Location,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Push => "push",
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::InApp => "in_app",
            Channel::Location => "location",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Granted => "granted",
            Decision::Denied => "denied",
            Decision::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Decision::Granted, Decision::Denied, Decision::Withdrawn]
            .into_iter()
            .find(|d| d.as_str() == s)
    }

    /// A refusal outranks a grant taken at the same instant.
    fn restrictive(self) -> bool {
        !matches!(self, Decision::Granted)
    }
}

impl ConsentSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentSource::AppScreen => "app_screen",
            ConsentSource::Website => "website",
            ConsentSource::InStore => "in_store",
            ConsentSource::CallCentre => "call_centre",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            ConsentSource::AppScreen,
            ConsentSource::Website,
            ConsentSource::InStore,
            ConsentSource::CallCentre,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// Staff record these on the member's behalf, and must say who they are.
    pub fn by_staff(self) -> bool {
        matches!(self, ConsentSource::InStore | ConsentSource::CallCentre)
    }
}

/// The text the member was shown when deciding: its version, and its SHA-256 so that the exact
/// wording can be proven later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ConsentText {
    /// The programme's identifier of the wording ("marketing-2026-03").
    pub version: String,
    /// The exact text shown (hashed, not stored).
    pub text: String,
}

impl ConsentText {
    pub fn sha256(&self) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(self.text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// One entry of the consent ledger: who decided what, about which text, when, where and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConsentRecord {
    /// Made where the decision is recorded; unique.
    pub record_id: String,
    pub member_id: String,
    pub purpose: Purpose,
    pub channel: Channel,
    pub decision: Decision,
    /// The wording's identifier.
    pub text_version: String,
    /// SHA-256 of the wording shown, 64 lowercase hex digits.
    pub text_sha256: String,
    /// RFC 3339, the clock of the device (or desk) where it was decided.
    pub decided_at: String,
    /// RFC 3339: when it takes effect on the server's clock (the device's clock corrected by the
    /// measured offset, never before the device's previous record). Orders the ledger.
    pub effective_at: String,
    /// RFC 3339, the server's clock when it stored the record; none while only on the phone.
    #[serde(default)]
    pub recorded_at: Option<String>,
    pub source: ConsentSource,
    /// The staff member who recorded it on the member's behalf (in store, call centre).
    #[serde(default)]
    pub recorded_by: Option<String>,
    /// The app's version when recorded from the app.
    #[serde(default)]
    pub app_version: Option<String>,
}

impl ConsentRecord {
    /// Rules a record obeys wherever it is checked.
    pub fn validate(&self) -> Result<(), CatalogError> {
        check_id("consent.record_id", &self.record_id)?;
        check_id("consent.member_id", &self.member_id)?;
        check_id("consent.text_version", &self.text_version)?;
        if self.text_sha256.len() != 64
            || !self
                .text_sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(CatalogError::new(
                "consent.text_sha256",
                "must be 64 lowercase hex digits",
            ));
        }
        parse_instant("consent.decided_at", &self.decided_at)?;
        parse_instant("consent.effective_at", &self.effective_at)?;
        if let Some(at) = &self.recorded_at {
            parse_instant("consent.recorded_at", at)?;
        }
        match (&self.recorded_by, self.source.by_staff()) {
            (Some(staff), true) => check_id("consent.recorded_by", staff)?,
            (None, true) => {
                return Err(CatalogError::new(
                    "consent.recorded_by",
                    "names the staff member for in-store and call-centre records",
                ));
            }
            (Some(_), false) => {
                return Err(CatalogError::new(
                    "consent.recorded_by",
                    "is only for records made by staff",
                ));
            }
            (None, false) => {}
        }
        if let Some(v) = &self.app_version
            && (v.is_empty() || v.len() > 40 || v.chars().any(char::is_control))
        {
            return Err(CatalogError::new(
                "consent.app_version",
                "must be 1 to 40 printable characters",
            ));
        }
        Ok(())
    }

    /// The ordering key: effective instant, refusals after grants at the same instant, record id.
    fn order_key(&self) -> OrderKey<'_> {
        let at = self
            .effective_at
            .parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond())
            .unwrap_or(i64::MIN);
        (at, self.decision.restrictive(), &self.record_id)
    }
}

/// Effective instant (ms), refusal, record id: the larger is the later decision.
type OrderKey<'r> = (i64, bool, &'r str);

/// The current decision for one purpose on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentStatus {
    pub purpose: Purpose,
    pub channel: Channel,
    /// None: never asked (which means no).
    pub decision: Option<Decision>,
    pub allowed: bool,
    /// RFC 3339, when the current decision took effect.
    pub since: Option<String>,
    pub text_version: Option<String>,
    pub source: Option<ConsentSource>,
}

/// The latest record of each (purpose, channel) in `records`, as the 20-cell grid, purposes then
/// channels in declaration order. Opt-in: a pair with no record is not allowed.
pub fn current_state<'a>(
    records: impl IntoIterator<Item = &'a ConsentRecord>,
) -> Vec<ConsentStatus> {
    // Each cell keeps its best record with its key, so every timestamp is parsed once.
    type Best<'r> = Option<(OrderKey<'r>, &'r ConsentRecord)>;
    let mut best: [[Best<'a>; 5]; 4] = [[None; 5]; 4];
    for r in records {
        let key = r.order_key();
        let cell = &mut best[r.purpose as usize][r.channel as usize];
        if cell.is_none_or(|(k, _)| key > k) {
            *cell = Some((key, r));
        }
    }
    let latest = best.map(|row| row.map(|cell| cell.map(|(_, r)| r)));
    let mut out = Vec::with_capacity(20);
    for purpose in Purpose::ALL {
        for channel in Channel::ALL {
            let r = latest[purpose as usize][channel as usize];
            out.push(ConsentStatus {
                purpose,
                channel,
                decision: r.map(|r| r.decision),
                allowed: r.is_some_and(|r| r.decision == Decision::Granted),
                since: r.map(|r| r.effective_at.clone()),
                text_version: r.map(|r| r.text_version.clone()),
                source: r.map(|r| r.source),
            });
        }
    }
    out
}

/// A feature that reaches or profiles the member, and the consents it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// Registering store geofences with the OS.
    GeofenceMonitoring,
    /// A notification when entering or dwelling at a store: location, and push for that purpose.
    GeolocatedNotifications,
    /// Marketing by push, e-mail, SMS or inside the app.
    PushOffers,
    EmailOffers,
    SmsOffers,
    InAppOffers,
    /// Ranking offers from what the member does.
    PersonalisedRanking,
    /// Sending usage events.
    Analytics,
}

impl Feature {
    pub const ALL: [Feature; 8] = [
        Feature::GeofenceMonitoring,
        Feature::GeolocatedNotifications,
        Feature::PushOffers,
        Feature::EmailOffers,
        Feature::SmsOffers,
        Feature::InAppOffers,
        Feature::PersonalisedRanking,
        Feature::Analytics,
    ];

    /// Every (purpose, channel) that must be granted.
    pub fn requires(self) -> &'static [(Purpose, Channel)] {
        use Channel::*;
        use Purpose::*;
        match self {
            Feature::GeofenceMonitoring => &[(GeolocatedOffers, Location)],
            Feature::GeolocatedNotifications => {
                &[(GeolocatedOffers, Location), (GeolocatedOffers, Push)]
            }
            Feature::PushOffers => &[(MarketingOffers, Push)],
            Feature::EmailOffers => &[(MarketingOffers, Email)],
            Feature::SmsOffers => &[(MarketingOffers, Sms)],
            Feature::InAppOffers => &[(MarketingOffers, InApp)],
            Feature::PersonalisedRanking => &[(Personalisation, InApp)],
            Feature::Analytics => &[(Analytics, InApp)],
        }
    }

    const fn mask(self) -> u32 {
        // Written out so that it is a constant: one AND per check.
        const fn bit(p: Purpose, c: Channel) -> u32 {
            1 << (p as u32 * 5 + c as u32)
        }
        use Channel::*;
        use Purpose::*;
        match self {
            Feature::GeofenceMonitoring => bit(GeolocatedOffers, Location),
            Feature::GeolocatedNotifications => {
                bit(GeolocatedOffers, Location) | bit(GeolocatedOffers, Push)
            }
            Feature::PushOffers => bit(MarketingOffers, Push),
            Feature::EmailOffers => bit(MarketingOffers, Email),
            Feature::SmsOffers => bit(MarketingOffers, Sms),
            Feature::InAppOffers => bit(MarketingOffers, InApp),
            Feature::PersonalisedRanking => bit(Personalisation, InApp),
            Feature::Analytics => bit(Analytics, InApp),
        }
    }
}

/// The consent state as 20 bits: what every gated feature checks, on its hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConsentGate(u32);

impl ConsentGate {
    /// Nothing granted.
    pub const CLOSED: ConsentGate = ConsentGate(0);

    pub fn from_state(state: &[ConsentStatus]) -> Self {
        ConsentGate(
            state
                .iter()
                .filter(|s| s.allowed)
                .fold(0, |bits, s| bits | Self::bit(s.purpose, s.channel)),
        )
    }

    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a ConsentRecord>) -> Self {
        Self::from_state(&current_state(records))
    }

    fn bit(p: Purpose, c: Channel) -> u32 {
        1 << (p as u32 * 5 + c as u32)
    }

    #[inline]
    pub fn allows(self, purpose: Purpose, channel: Channel) -> bool {
        self.0 & Self::bit(purpose, channel) != 0
    }

    #[inline]
    pub fn permits(self, feature: Feature) -> bool {
        let mask = feature.mask();
        self.0 & mask == mask
    }

    pub fn bits(self) -> u32 {
        self.0
    }

    pub fn from_bits(bits: u32) -> Self {
        ConsentGate(bits & ((1 << 20) - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, p: Purpose, c: Channel, d: Decision, at: &str) -> ConsentRecord {
        ConsentRecord {
            record_id: id.into(),
            member_id: "m1".into(),
            purpose: p,
            channel: c,
            decision: d,
            text_version: "v1".into(),
            text_sha256: "0".repeat(64),
            decided_at: at.into(),
            effective_at: at.into(),
            recorded_at: None,
            source: ConsentSource::AppScreen,
            recorded_by: None,
            app_version: None,
        }
    }

    #[test]
    fn the_latest_decision_wins_and_a_refusal_wins_a_tie() {
        use Channel::Push;
        use Decision::*;
        use Purpose::MarketingOffers as M;
        let a = record("a", M, Push, Granted, "2026-01-01T10:00:00Z");
        let b = record("b", M, Push, Withdrawn, "2026-01-01T11:00:00Z");
        // Arrives last but decided earlier: history, not the state.
        let c = record("c", M, Push, Granted, "2026-01-01T10:30:00Z");
        let gate = ConsentGate::from_records([&a, &b, &c]);
        assert!(!gate.allows(M, Push));
        assert!(ConsentGate::from_records([&a, &c]).allows(M, Push));
        let tie = record("d", M, Push, Denied, "2026-01-01T10:00:00Z");
        assert!(!ConsentGate::from_records([&a, &tie]).allows(M, Push));
        assert!(!ConsentGate::from_records([&tie, &a]).allows(M, Push));
    }

    #[test]
    fn nothing_recorded_means_nothing_allowed() {
        let state = current_state([]);
        assert_eq!(state.len(), 20);
        assert!(state.iter().all(|s| !s.allowed && s.decision.is_none()));
        for f in Feature::ALL {
            assert!(!ConsentGate::CLOSED.permits(f));
        }
    }

    #[test]
    fn features_need_every_consent_they_list() {
        for feature in Feature::ALL {
            let needs = feature.requires();
            let all: Vec<ConsentRecord> = needs
                .iter()
                .enumerate()
                .map(|(i, (p, c))| {
                    record(
                        &format!("r{i}"),
                        *p,
                        *c,
                        Decision::Granted,
                        "2026-01-01T10:00:00Z",
                    )
                })
                .collect();
            assert!(
                ConsentGate::from_records(&all).permits(feature),
                "{feature:?}"
            );
            for skip in 0..all.len() {
                let partial = all
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .map(|(_, r)| r);
                assert!(!ConsentGate::from_records(partial).permits(feature));
            }
        }
    }

    #[test]
    fn records_are_validated() {
        let good = record(
            "a",
            Purpose::Analytics,
            Channel::InApp,
            Decision::Granted,
            "2026-01-01T10:00:00Z",
        );
        good.validate().unwrap();
        let mut bad = good.clone();
        bad.text_sha256 = "XYZ".into();
        assert_eq!(bad.validate().unwrap_err().field, "consent.text_sha256");
        let mut staff = good.clone();
        staff.source = ConsentSource::InStore;
        assert_eq!(staff.validate().unwrap_err().field, "consent.recorded_by");
        staff.recorded_by = Some("staff-42".into());
        staff.validate().unwrap();
        let mut member = good.clone();
        member.recorded_by = Some("staff-42".into());
        assert_eq!(member.validate().unwrap_err().field, "consent.recorded_by");
        let mut when = good;
        when.effective_at = "yesterday".into();
        assert_eq!(when.validate().unwrap_err().field, "consent.effective_at");
    }

    #[test]
    fn the_text_hash_is_sha256() {
        let t = ConsentText {
            version: "v1".into(),
            text: "abc".into(),
        };
        assert_eq!(
            t.sha256(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
