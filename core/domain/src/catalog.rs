//! The programme's catalog as the server publishes it and the phone caches it: stores and offers.
//!
//! These are wire types (shared by the server and the sync engine, so a field exists once) and
//! the rows of the local cache. Every value from the network goes through `validate()` before it
//! is stored: a malformed catalog page is refused whole and the cache stays as it was.

use serde::{Deserialize, Serialize};

pub use crate::error::CatalogError;
use crate::text::Lines;

/// The shop id of the web checkout: its till redeems coupons issued for the website.
pub const WEB_STORE: &str = "web";

/// The longest identifier of a store, an offer or an event.
pub const MAX_ID: usize = 64;
/// The longest free text (names, titles, descriptions, addresses).
pub const MAX_TEXT: usize = 2000;
/// The most tags, categories, store ids… in one list.
pub const MAX_LIST: usize = 200;
/// The largest amount of money anywhere in the programme, in minor units (10 million euros):
/// baskets, purchases and their lines, returns, offers' amounts and minimums, rules' thresholds.
/// One bound, so that no sum of a few of them can overflow and no field accepts what another
/// refuses.
pub const MAX_CENTS: u64 = 1_000_000_000;

/// Checks an amount of money against [`MAX_CENTS`].
pub fn check_cents(field: &'static str, cents: u64) -> Result<(), CatalogError> {
    if cents > MAX_CENTS {
        return Err(CatalogError::new(
            field,
            "at most 1,000,000,000 (10 million in major units)",
        ));
    }
    Ok(())
}

/// Checks an identifier: 1–64 of `A-Z a-z 0-9 . _ : -`.
pub fn check_id(field: &'static str, id: &str) -> Result<(), CatalogError> {
    if id.is_empty() || id.len() > MAX_ID {
        return Err(CatalogError::new(field, "must be 1 to 64 characters"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    {
        return Err(CatalogError::new(
            field,
            "may only contain A-Z a-z 0-9 . _ : -",
        ));
    }
    Ok(())
}

fn check_text(
    field: &'static str,
    text: &str,
    required: bool,
    lines: Lines,
) -> Result<(), CatalogError> {
    crate::text::check_display(field, text, MAX_TEXT, required, lines)
}

fn clean_text(
    field: &'static str,
    text: &mut String,
    required: bool,
    lines: Lines,
) -> Result<(), CatalogError> {
    crate::text::clean(field, text, MAX_TEXT, required, lines)
}

fn check_list(field: &'static str, list: &[String], ids: bool) -> Result<(), CatalogError> {
    if list.len() > MAX_LIST {
        return Err(CatalogError::new(field, "has more than 200 entries"));
    }
    for item in list {
        if ids {
            check_id(field, item)?;
        } else {
            check_text(field, item, true, Lines::One)?;
        }
    }
    Ok(())
}

/// A shop, where a card is shown and offers are redeemed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Store {
    pub id: String,
    pub name: String,
    pub address: String,
    pub postcode: String,
    pub city: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// WGS 84 degrees, −90 to 90.
    pub latitude: f64,
    /// WGS 84 degrees, −180 to 180.
    pub longitude: f64,
    /// The geofence radius in metres (100 to 5000).
    pub radius_m: u32,
    /// IANA time zone of the shop ("Europe/Paris"): opening hours are in it.
    pub timezone: String,
    #[serde(default)]
    pub opening_hours: Vec<OpeningHours>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// One opening span: `day` 1 = Monday … 7 = Sunday, `opens`/`closes` as `HH:MM` local time.
/// A span that closes before it opens runs past midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OpeningHours {
    pub day: u8,
    pub opens: String,
    pub closes: String,
}

fn check_hhmm(field: &'static str, s: &str) -> Result<(), CatalogError> {
    let ok = s.len() == 5
        && s.as_bytes()[2] == b':'
        && s[..2].parse::<u8>().is_ok_and(|h| h < 24)
        && s[3..].parse::<u8>().is_ok_and(|m| m < 60)
        && s.bytes()
            .enumerate()
            .all(|(i, b)| i == 2 || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(CatalogError::new(field, "must be HH:MM"))
    }
}

impl Store {
    /// Its display text in clean form ([`crate::text`]): what the server stores.
    pub fn clean(&mut self) -> Result<(), CatalogError> {
        clean_text("store.name", &mut self.name, true, Lines::One)?;
        clean_text("store.address", &mut self.address, false, Lines::Several)?;
        clean_text("store.postcode", &mut self.postcode, false, Lines::One)?;
        clean_text("store.city", &mut self.city, true, Lines::One)
    }

    pub fn validate(&self) -> Result<(), CatalogError> {
        check_id("store.id", &self.id)?;
        check_text("store.name", &self.name, true, Lines::One)?;
        check_text("store.address", &self.address, false, Lines::Several)?;
        check_text("store.postcode", &self.postcode, false, Lines::One)?;
        check_text("store.city", &self.city, true, Lines::One)?;
        if self.country.len() != 2 || !self.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(CatalogError::new(
                "store.country",
                "must be an ISO 3166-1 alpha-2 code",
            ));
        }
        if !(self.latitude.is_finite() && (-90.0..=90.0).contains(&self.latitude)) {
            return Err(CatalogError::new(
                "store.latitude",
                "must be between -90 and 90",
            ));
        }
        if !(self.longitude.is_finite() && (-180.0..=180.0).contains(&self.longitude)) {
            return Err(CatalogError::new(
                "store.longitude",
                "must be between -180 and 180",
            ));
        }
        if !(100..=5000).contains(&self.radius_m) {
            return Err(CatalogError::new(
                "store.radius_m",
                "must be between 100 and 5000 metres",
            ));
        }
        if jiff::tz::TimeZone::get(&self.timezone).is_err() {
            return Err(CatalogError::new(
                "store.timezone",
                "is not a known IANA time zone",
            ));
        }
        if self.opening_hours.len() > 50 {
            return Err(CatalogError::new(
                "store.opening_hours",
                "has more than 50 spans",
            ));
        }
        for span in &self.opening_hours {
            if !(1..=7).contains(&span.day) {
                return Err(CatalogError::new(
                    "store.opening_hours.day",
                    "must be 1 (Monday) to 7 (Sunday)",
                ));
            }
            check_hhmm("store.opening_hours.opens", &span.opens)?;
            check_hhmm("store.opening_hours.closes", &span.closes)?;
        }
        check_list("store.tags", &self.tags, true)
    }
}

/// What an offer gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OfferKind {
    /// `percent` off the basket or the lines it targets (1–100).
    PercentOff {
        percent: u32,
    },
    /// A fixed amount off, in minor units of `currency` (ISO 4217).
    AmountOff {
        amount_cents: u64,
        currency: String,
    },
    /// Points earned are multiplied (`multiplier_percent` 150 = ×1.5).
    PointsMultiplier {
        multiplier_percent: u32,
    },
    /// A free item.
    Gift {
        item: String,
    },
    FreeDelivery,
    /// Members see a collection before everyone else.
    EarlyAccess {
        collection: String,
    },
}

/// Where an offer can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OfferChannel {
    InStore,
    Online,
    Both,
}

/// An offer in the catalog. Targeting fields that are empty mean "everyone / everywhere".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Offer {
    pub id: String,
    pub title: String,
    pub description: String,
    pub kind: OfferKind,
    /// RFC 3339.
    pub valid_from: String,
    /// RFC 3339; after `valid_from`.
    pub valid_to: String,
    pub channel: OfferChannel,
    /// Days of the week it applies (1 = Monday … 7); empty = every day.
    #[serde(default)]
    pub days: Vec<u8>,
    /// Local hours it applies, `HH:MM`–`HH:MM`; none = all day.
    #[serde(default)]
    pub hours_from: Option<String>,
    #[serde(default)]
    pub hours_to: Option<String>,
    #[serde(default)]
    pub store_ids: Vec<String>,
    #[serde(default)]
    pub store_tags: Vec<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub tiers: Vec<String>,
    #[serde(default)]
    pub segments: Vec<String>,
    #[serde(default)]
    pub min_basket_cents: Option<u64>,
    #[serde(default)]
    pub per_member_limit: Option<u32>,
    #[serde(default)]
    pub requires_clip: bool,
    /// A reward: members buy its coupon with this many points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points_cost: Option<u32>,
}

/// Parses an RFC 3339 instant.
pub fn parse_instant(field: &'static str, s: &str) -> Result<jiff::Timestamp, CatalogError> {
    s.parse::<jiff::Timestamp>()
        .map_err(|_| CatalogError::new(field, "must be an RFC 3339 instant"))
}

impl Offer {
    /// Its display text in clean form ([`crate::text`]): what the server stores.
    pub fn clean(&mut self) -> Result<(), CatalogError> {
        clean_text("offer.title", &mut self.title, true, Lines::One)?;
        clean_text(
            "offer.description",
            &mut self.description,
            false,
            Lines::Several,
        )?;
        match &mut self.kind {
            OfferKind::Gift { item } => clean_text("offer.kind.item", item, true, Lines::One),
            OfferKind::EarlyAccess { collection } => {
                clean_text("offer.kind.collection", collection, true, Lines::One)
            }
            _ => Ok(()),
        }
    }

    pub fn validate(&self) -> Result<(), CatalogError> {
        check_id("offer.id", &self.id)?;
        check_text("offer.title", &self.title, true, Lines::One)?;
        check_text(
            "offer.description",
            &self.description,
            false,
            Lines::Several,
        )?;
        match &self.kind {
            OfferKind::PercentOff { percent } if !(1..=100).contains(percent) => {
                return Err(CatalogError::new("offer.kind.percent", "must be 1 to 100"));
            }
            OfferKind::AmountOff {
                amount_cents,
                currency,
            } => {
                if *amount_cents == 0 {
                    return Err(CatalogError::new(
                        "offer.kind.amount_cents",
                        "must be positive",
                    ));
                }
                check_cents("offer.kind.amount_cents", *amount_cents)?;
                if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(CatalogError::new(
                        "offer.kind.currency",
                        "must be an ISO 4217 code",
                    ));
                }
            }
            OfferKind::PointsMultiplier { multiplier_percent }
                if !(101..=1000).contains(multiplier_percent) =>
            {
                return Err(CatalogError::new(
                    "offer.kind.multiplier_percent",
                    "must be 101 to 1000",
                ));
            }
            OfferKind::Gift { item } => check_text("offer.kind.item", item, true, Lines::One)?,
            OfferKind::EarlyAccess { collection } => {
                check_text("offer.kind.collection", collection, true, Lines::One)?
            }
            _ => {}
        }
        if self.points_cost == Some(0) {
            return Err(CatalogError::new("offer.points_cost", "must be positive"));
        }
        let from = parse_instant("offer.valid_from", &self.valid_from)?;
        let to = parse_instant("offer.valid_to", &self.valid_to)?;
        if to <= from {
            return Err(CatalogError::new(
                "offer.valid_to",
                "must be after valid_from",
            ));
        }
        if self.days.len() > 7 || self.days.iter().any(|d| !(1..=7).contains(d)) {
            return Err(CatalogError::new(
                "offer.days",
                "must be days 1 (Monday) to 7 (Sunday)",
            ));
        }
        match (&self.hours_from, &self.hours_to) {
            (None, None) => {}
            (Some(f), Some(t)) => {
                check_hhmm("offer.hours_from", f)?;
                check_hhmm("offer.hours_to", t)?;
            }
            _ => {
                return Err(CatalogError::new(
                    "offer.hours_from",
                    "hours_from and hours_to go together",
                ));
            }
        }
        check_list("offer.store_ids", &self.store_ids, true)?;
        check_list("offer.store_tags", &self.store_tags, true)?;
        check_list("offer.categories", &self.categories, true)?;
        check_list("offer.tiers", &self.tiers, true)?;
        check_list("offer.segments", &self.segments, true)?;
        if self.per_member_limit == Some(0) {
            return Err(CatalogError::new(
                "offer.per_member_limit",
                "must be positive when set",
            ));
        }
        if let Some(min) = self.min_basket_cents {
            check_cents("offer.min_basket_cents", min)?;
        }
        Ok(())
    }
}

/// A whole catalog, as the admin API loads it from a JSON file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub program: crate::Program,
    pub stores: Vec<Store>,
    pub offers: Vec<Offer>,
}

impl Catalog {
    pub fn validate(&self) -> Result<(), CatalogError> {
        self.program
            .validated()
            .map_err(|e| CatalogError::new("program", e.to_string()))?;
        let mut ids = std::collections::HashSet::new();
        for s in &self.stores {
            s.validate()?;
            if !ids.insert(("s", s.id.as_str())) {
                return Err(CatalogError::new("store.id", "is duplicated"));
            }
        }
        for o in &self.offers {
            o.validate()?;
            if !ids.insert(("o", o.id.as_str())) {
                return Err(CatalogError::new("offer.id", "is duplicated"));
            }
        }
        Ok(())
    }
}
