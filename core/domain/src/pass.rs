//! Wallet passes (issue #18, ADR 0026): one model of what a member's card or a wallet coupon
//! shows, and how it is written for Apple Wallet (`pass.json` of a store card or coupon pass)
//! and Google Wallet (a loyalty class and object, an offer class and object). Each platform's
//! documented limits are checked here, each with its own [`PassError`]; signing, zipping and
//! sending belong to the server.
//!
//! Apple: <https://developer.apple.com/documentation/walletpasses/pass>; Google:
//! <https://developers.google.com/wallet/retail/loyalty-cards/rest/v1/loyaltyobject>.

use serde::Serialize;
use serde_json::{Value, json};

use crate::barcode::Symbology;
use crate::geo::{Position, distance_m};

/// Apple Wallet shows at most this many locations; Google's are the same shops.
pub const MAX_LOCATIONS: usize = 10;
/// Apple: the authentication token is at least 16 characters.
pub const MIN_AUTH_TOKEN: usize = 16;
/// Google: the loyalty programme's and issuer's names (recommended maximum, kept as a limit so
/// that nothing is cut on the card).
pub const MAX_GOOGLE_NAME: usize = 20;
/// Google: `accountName` is cut beyond this on the card; a longer member name is shortened.
pub const MAX_GOOGLE_ACCOUNT_NAME: usize = 20;
/// The text of a field on the front of a pass: the operator's settings are refused beyond it;
/// what comes from members and the catalog (names, titles: up to 100 and 2,000 characters) is
/// shortened to it, never refused.
pub const MAX_FIELD_TEXT: usize = 64;
/// Google: an object or class id suffix (`issuerId.suffix`), `[A-Za-z0-9._-]`.
pub const MAX_GOOGLE_ID: usize = 64;

/// A pass cannot be made from these values: each limit its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassError {
    #[error("{field}: at most {max} characters ({len})")]
    TooLong {
        field: String,
        max: usize,
        len: usize,
    },
    #[error("{field}: required")]
    Missing { field: String },
    #[error("at most {max} locations ({count})")]
    TooManyLocations { max: usize, count: usize },
    /// An image of the wrong size or format for its role.
    #[error("image {name}: {reason}")]
    Image { name: String, reason: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

fn too_long(field: &str, max: usize, text: &str) -> Result<(), PassError> {
    let len = text.chars().count();
    if len > max {
        return Err(PassError::TooLong {
            field: field.into(),
            max,
            len,
        });
    }
    Ok(())
}

fn required(field: &str, text: &str) -> Result<(), PassError> {
    if text.trim().is_empty() {
        return Err(PassError::Missing {
            field: field.into(),
        });
    }
    Ok(())
}

fn invalid(field: &str, reason: &str) -> PassError {
    PassError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A colour as both platforms write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// Apple: `rgb(r, g, b)`.
    pub fn apple(self) -> String {
        format!("rgb({}, {}, {})", self.0, self.1, self.2)
    }
    /// Google: `#rrggbb`.
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// How the programme looks on a pass (operator settings, checked once at start).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Branding {
    /// The programme's name ("Maison Tessera Club").
    pub programme_name: String,
    /// The retailer ("Maison Tessera").
    pub organization_name: String,
    pub foreground: Rgb,
    pub background: Rgb,
    pub label: Rgb,
    /// Google: the programme logo's public HTTPS address.
    #[serde(default)]
    pub logo_url: Option<String>,
}

impl Branding {
    pub fn validate(&self) -> Result<(), PassError> {
        required("programme_name", &self.programme_name)?;
        required("organization_name", &self.organization_name)?;
        too_long("programme_name", MAX_FIELD_TEXT, &self.programme_name)?;
        too_long("organization_name", MAX_FIELD_TEXT, &self.organization_name)?;
        if let Some(url) = &self.logo_url
            && !url.starts_with("https://")
        {
            return Err(invalid("logo_url", "an https:// address"));
        }
        Ok(())
    }
}

/// A shop a pass lists: the wallet shows the pass on the lock screen near it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PassShop {
    pub store_id: String,
    pub name: String,
    pub position: Position,
}

/// The `limit` shops nearest `near` (all of them in catalog order when nothing is known of the
/// member's whereabouts), at most [`MAX_LOCATIONS`].
pub fn nearest_shops(shops: &[PassShop], near: Option<Position>, limit: usize) -> Vec<PassShop> {
    let limit = limit.min(MAX_LOCATIONS);
    let mut chosen: Vec<&PassShop> = shops.iter().collect();
    if let Some(at) = near {
        chosen.sort_by(|a, b| {
            distance_m(at, a.position)
                .total_cmp(&distance_m(at, b.position))
                .then_with(|| a.store_id.cmp(&b.store_id))
        });
    }
    chosen.into_iter().take(limit).cloned().collect()
}

/// What a member's card pass shows.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct CardPass {
    /// The pass's serial number (stable per member).
    pub serial: String,
    pub card_number: String,
    pub member_name: String,
    pub points: i64,
    /// The tier's name, when the programme has tiers.
    pub tier: Option<String>,
    /// The programme's card symbology (the wallet's barcode; the rotating code is the app's).
    pub symbology: Symbology,
    pub shops: Vec<PassShop>,
    /// Google: the serials of the member's coupon passes offered to Google Wallet, linked to
    /// the card (as `{issuer}.{serial}`).
    pub linked_offers: Vec<String>,
}

/// What a wallet coupon's pass shows.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct CouponPass {
    pub serial: String,
    pub coupon_id: String,
    pub offer_id: String,
    pub title: String,
    pub description: String,
    /// The coupon's signed code (what the till verifies), drawn as a QR code.
    pub code: String,
    /// RFC 3339.
    pub expires_at: String,
    pub shops: Vec<PassShop>,
    /// Redeemed or revoked: the wallet shows it as used.
    pub used: bool,
}

/// The pass as Apple's web service knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppleIdentity {
    pub pass_type_id: String,
    pub team_id: String,
    /// The PassKit web service (`…/passkit`); `None` for a pass that is never updated.
    pub web_service_url: Option<String>,
    pub authentication_token: String,
}

impl AppleIdentity {
    pub fn validate(&self) -> Result<(), PassError> {
        required("pass_type_id", &self.pass_type_id)?;
        if !self.pass_type_id.starts_with("pass.") {
            return Err(invalid("pass_type_id", "starts with `pass.`"));
        }
        required("team_id", &self.team_id)?;
        if self.team_id.len() != 10 || !self.team_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(invalid("team_id", "10 letters and digits"));
        }
        if let Some(url) = &self.web_service_url
            && !url.starts_with("https://")
            && !url.starts_with("http://127.0.0.1")
            && !url.starts_with("http://localhost")
        {
            return Err(invalid(
                "web_service_url",
                "https:// (http only on loopback, for development)",
            ));
        }
        if self.authentication_token.len() < MIN_AUTH_TOKEN {
            return Err(invalid("authentication_token", "at least 16 characters"));
        }
        Ok(())
    }
}

/// Apple's barcode format for a programme symbology: Wallet draws QR, PDF417, Aztec and
/// Code 128 only, so EAN and UPC cards are drawn as Code 128 of the same digits.
pub fn apple_barcode_format(symbology: Symbology) -> &'static str {
    match symbology {
        Symbology::Qr => "PKBarcodeFormatQR",
        Symbology::Pdf417 => "PKBarcodeFormatPDF417",
        Symbology::Aztec => "PKBarcodeFormatAztec",
        Symbology::Code128 | Symbology::Ean13 | Symbology::Ean8 | Symbology::UpcA => {
            "PKBarcodeFormatCode128"
        }
    }
}

/// Google's barcode type for a programme symbology.
pub fn google_barcode_type(symbology: Symbology) -> &'static str {
    match symbology {
        Symbology::Qr => "QR_CODE",
        Symbology::Pdf417 => "PDF_417",
        Symbology::Aztec => "AZTEC",
        Symbology::Code128 => "CODE_128",
        Symbology::Ean13 => "EAN_13",
        Symbology::Ean8 => "EAN_8",
        Symbology::UpcA => "UPC_A",
    }
}

fn check_shops(shops: &[PassShop]) -> Result<(), PassError> {
    if shops.len() > MAX_LOCATIONS {
        return Err(PassError::TooManyLocations {
            max: MAX_LOCATIONS,
            count: shops.len(),
        });
    }
    for s in shops {
        s.position
            .validate()
            .map_err(|e| invalid("shops.position", &e.reason))?;
    }
    Ok(())
}

fn apple_locations(shops: &[PassShop], text: impl Fn(&PassShop) -> String) -> Value {
    Value::Array(
        shops
            .iter()
            .map(|s| {
                json!({
                    "latitude": s.position.latitude,
                    "longitude": s.position.longitude,
                    "relevantText": shorten(&text(s), MAX_FIELD_TEXT),
                })
            })
            .collect(),
    )
}

fn apple_common(id: &AppleIdentity, branding: &Branding, serial: &str, description: &str) -> Value {
    let mut pass = json!({
        "formatVersion": 1,
        "passTypeIdentifier": id.pass_type_id,
        "teamIdentifier": id.team_id,
        "serialNumber": serial,
        "organizationName": branding.organization_name,
        "description": description,
        "logoText": branding.programme_name,
        "foregroundColor": branding.foreground.apple(),
        "backgroundColor": branding.background.apple(),
        "labelColor": branding.label.apple(),
        "sharingProhibited": true,
    });
    if let Some(url) = &id.web_service_url {
        pass["webServiceURL"] = json!(url);
        pass["authenticationToken"] = json!(id.authentication_token);
    }
    pass
}

fn check_serial(serial: &str) -> Result<(), PassError> {
    required("serial", serial)?;
    too_long("serial", MAX_GOOGLE_ID, serial)?;
    if !serial
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(invalid("serial", "letters, digits, `.`, `_` and `-`"));
    }
    Ok(())
}

impl CardPass {
    pub fn validate(&self) -> Result<(), PassError> {
        check_serial(&self.serial)?;
        required("card_number", &self.card_number)?;
        too_long("card_number", MAX_FIELD_TEXT, &self.card_number)?;
        check_shops(&self.shops)
    }

    /// Apple's `pass.json` of a store card.
    pub fn apple(&self, id: &AppleIdentity, branding: &Branding) -> Result<Value, PassError> {
        self.validate()?;
        id.validate()?;
        branding.validate()?;
        let mut pass = apple_common(
            id,
            branding,
            &self.serial,
            &format!("{} card", branding.programme_name),
        );
        pass["barcodes"] = json!([{
            "format": apple_barcode_format(self.symbology),
            "message": self.card_number,
            "messageEncoding": "iso-8859-1",
            "altText": crate::card::display_number(&self.card_number),
        }]);
        let mut secondary = vec![json!({
            "key": "member", "label": "Member",
            "value": shorten(&self.member_name, MAX_FIELD_TEXT),
        })];
        if let Some(tier) = &self.tier {
            secondary.push(json!({
                "key": "tier", "label": "Tier", "value": shorten(tier, MAX_FIELD_TEXT),
                "changeMessage": "You are now %@",
            }));
        }
        pass["storeCard"] = json!({
            "primaryFields": [{
                "key": "points", "label": "Points", "value": self.points,
                "changeMessage": "You now have %@ points",
                "numberStyle": "PKNumberStyleDecimal",
            }],
            "secondaryFields": secondary,
            "backFields": [{
                "key": "card", "label": "Card number", "value": self.card_number,
            }],
        });
        if !self.shops.is_empty() {
            let name = branding.programme_name.clone();
            pass["locations"] =
                apple_locations(&self.shops, |s| format!("Your {name} card at {}", s.name));
        }
        Ok(pass)
    }

    /// Google's loyalty object for the member (`{issuer}.{serial}`) in `class_id`.
    pub fn google(&self, issuer_id: &str, class_id: &str) -> Result<Value, PassError> {
        self.validate()?;
        check_issuer(issuer_id)?;
        let mut object = json!({
            "id": format!("{issuer_id}.{}", self.serial),
            "classId": class_id,
            "state": "ACTIVE",
            "accountId": self.card_number,
            "accountName": shorten(&self.member_name, MAX_GOOGLE_ACCOUNT_NAME),
            "loyaltyPoints": {
                "label": "Points",
                "balance": { "int": self.points },
            },
            "barcode": {
                "type": google_barcode_type(self.symbology),
                "value": self.card_number,
                "alternateText": crate::card::display_number(&self.card_number),
            },
            "linkedOfferIds": self
                .linked_offers
                .iter()
                .map(|s| format!("{issuer_id}.{s}"))
                .collect::<Vec<_>>(),
            "locations": google_locations(&self.shops),
        });
        if let Some(tier) = &self.tier {
            object["textModulesData"] = json!([{
                "id": "tier", "header": "Tier", "body": tier,
            }]);
        }
        Ok(object)
    }
}

fn google_locations(shops: &[PassShop]) -> Value {
    Value::Array(
        shops
            .iter()
            .map(|s| json!({"latitude": s.position.latitude, "longitude": s.position.longitude}))
            .collect(),
    )
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn check_issuer(issuer_id: &str) -> Result<(), PassError> {
    if issuer_id.is_empty()
        || issuer_id.len() > 20
        || !issuer_id.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid("issuer_id", "the issuer's number"));
    }
    Ok(())
}

/// Google's loyalty class: the programme, once per issuer.
pub fn google_loyalty_class(
    branding: &Branding,
    issuer_id: &str,
    class_suffix: &str,
) -> Result<Value, PassError> {
    branding.validate()?;
    check_issuer(issuer_id)?;
    check_serial(class_suffix)?;
    too_long("programme_name", MAX_GOOGLE_NAME, &branding.programme_name)?;
    too_long(
        "organization_name",
        MAX_GOOGLE_NAME,
        &branding.organization_name,
    )?;
    let logo = branding
        .logo_url
        .as_ref()
        .ok_or_else(|| PassError::Missing {
            field: "logo_url".into(),
        })?;
    Ok(json!({
        "id": format!("{issuer_id}.{class_suffix}"),
        "issuerName": branding.organization_name,
        "programName": branding.programme_name,
        "programLogo": { "sourceUri": { "uri": logo } },
        "hexBackgroundColor": branding.background.hex(),
        "reviewStatus": "UNDER_REVIEW",
    }))
}

impl CouponPass {
    pub fn validate(&self) -> Result<(), PassError> {
        check_serial(&self.serial)?;
        required("title", &self.title)?;
        required("code", &self.code)?;
        if self.expires_at.parse::<jiff::Timestamp>().is_err() {
            return Err(invalid("expires_at", "RFC 3339"));
        }
        check_shops(&self.shops)
    }

    /// Apple's `pass.json` of a coupon.
    pub fn apple(&self, id: &AppleIdentity, branding: &Branding) -> Result<Value, PassError> {
        self.validate()?;
        id.validate()?;
        branding.validate()?;
        let title = shorten(&self.title, MAX_FIELD_TEXT);
        let mut pass = apple_common(id, branding, &self.serial, &title);
        pass["barcodes"] = json!([{
            "format": "PKBarcodeFormatQR",
            "message": self.code,
            "messageEncoding": "iso-8859-1",
        }]);
        pass["expirationDate"] = json!(self.expires_at);
        if self.used {
            pass["voided"] = json!(true);
        }
        pass["coupon"] = json!({
            "primaryFields": [{ "key": "offer", "label": "Offer", "value": title }],
            "secondaryFields": [{
                "key": "expires", "label": "Until", "value": self.expires_at,
                "dateStyle": "PKDateStyleMedium",
            }],
            "backFields": [{ "key": "terms", "label": "Terms", "value": self.description }],
        });
        if !self.shops.is_empty() {
            pass["locations"] = apple_locations(&self.shops, |s| format!("{title} at {}", s.name));
        }
        Ok(pass)
    }

    /// Google's offer object for the coupon in `class_id` (the offer's class).
    pub fn google(&self, issuer_id: &str, class_id: &str) -> Result<Value, PassError> {
        self.validate()?;
        check_issuer(issuer_id)?;
        Ok(json!({
            "id": format!("{issuer_id}.{}", self.serial),
            "classId": class_id,
            "state": if self.used { "COMPLETED" } else { "ACTIVE" },
            "barcode": { "type": "QR_CODE", "value": self.code },
            "validTimeInterval": { "end": { "date": self.expires_at } },
            "locations": google_locations(&self.shops),
        }))
    }
}

/// Google's offer class for an offer.
pub fn google_offer_class(
    branding: &Branding,
    issuer_id: &str,
    offer_id: &str,
    title: &str,
) -> Result<Value, PassError> {
    branding.validate()?;
    check_issuer(issuer_id)?;
    check_serial(offer_id)?;
    required("title", title)?;
    too_long(
        "organization_name",
        MAX_GOOGLE_NAME,
        &branding.organization_name,
    )?;
    Ok(json!({
        "id": format!("{issuer_id}.{offer_id}"),
        "issuerName": branding.organization_name,
        "title": shorten(title, MAX_FIELD_TEXT),
        "provider": branding.organization_name,
        "redemptionChannel": "BOTH",
        "reviewStatus": "UNDER_REVIEW",
    }))
}

/// What each image of an Apple pass may be: (name without scale suffix, width, height, exact).
/// `exact`: the image must have these dimensions; otherwise they are the most it may have.
const APPLE_IMAGES: &[(&str, u32, u32, bool)] = &[
    ("icon", 29, 29, true),
    ("logo", 160, 50, false),
    ("strip", 375, 123, false),
    ("thumbnail", 90, 90, false),
];

/// Check an Apple pass image by its file name (`icon.png`, `logo@2x.png`…) and its PNG
/// dimensions: the roles Apple documents for store cards and coupons, at scale 1, 2 or 3.
pub fn check_apple_image(name: &str, width: u32, height: u32) -> Result<(), PassError> {
    let bad = |reason: String| PassError::Image {
        name: name.into(),
        reason,
    };
    let stem = name
        .strip_suffix(".png")
        .ok_or_else(|| bad("a PNG file".into()))?;
    let (role, scale) = match stem.split_once('@') {
        None => (stem, 1),
        Some((role, "2x")) => (role, 2),
        Some((role, "3x")) => (role, 3),
        Some(_) => return Err(bad("scale @2x or @3x".into())),
    };
    let &(_, w, h, exact) = APPLE_IMAGES
        .iter()
        .find(|(r, ..)| *r == role)
        .ok_or_else(|| bad("not an image of a store card or coupon".into()))?;
    let (w, h) = (w * scale, h * scale);
    if exact && (width, height) != (w, h) {
        return Err(bad(format!("{w}×{h} pixels, not {width}×{height}")));
    }
    if !exact && (width > w || height > h) {
        return Err(bad(format!("at most {w}×{h} pixels, not {width}×{height}")));
    }
    if width == 0 || height == 0 {
        return Err(bad("empty".into()));
    }
    Ok(())
}

/// Every pass needs an icon.
pub fn check_apple_image_set<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), PassError> {
    if !names.into_iter().any(|n| n == "icon.png") {
        return Err(PassError::Image {
            name: "icon.png".into(),
            reason: "required".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn branding() -> Branding {
        Branding {
            programme_name: "Tessera Club".into(),
            organization_name: "Maison Tessera".into(),
            foreground: Rgb(255, 255, 255),
            background: Rgb(20, 40, 80),
            label: Rgb(200, 200, 200),
            logo_url: Some("https://example.com/logo.png".into()),
        }
    }

    fn id() -> AppleIdentity {
        AppleIdentity {
            pass_type_id: "pass.app.tessera.card".into(),
            team_id: "ABCDE12345".into(),
            web_service_url: Some("https://tessera.example/passkit".into()),
            authentication_token: "a".repeat(32),
        }
    }

    fn shop(i: u32, lat: f64) -> PassShop {
        PassShop {
            store_id: format!("st-{i}"),
            name: format!("Shop {i}"),
            position: Position {
                latitude: lat,
                longitude: 2.35,
            },
        }
    }

    fn card() -> CardPass {
        CardPass {
            serial: "card-m1".into(),
            card_number: "4006381333931".into(),
            member_name: "Zoé Martin-Delacroix de la Fontaine".into(),
            points: 1234,
            tier: Some("Gold".into()),
            symbology: Symbology::Ean13,
            shops: vec![shop(1, 48.85)],
            linked_offers: vec![],
        }
    }

    #[test]
    fn a_card_pass_follows_apples_field_rules() {
        let p = card().apple(&id(), &branding()).unwrap();
        assert_eq!(p["formatVersion"], 1);
        assert_eq!(p["barcodes"][0]["format"], "PKBarcodeFormatCode128");
        assert_eq!(p["storeCard"]["primaryFields"][0]["value"], 1234);
        assert_eq!(p["backgroundColor"], "rgb(20, 40, 80)");
        assert_eq!(p["locations"].as_array().unwrap().len(), 1);
        let mut keys: Vec<_> = ["primaryFields", "secondaryFields", "backFields"]
            .iter()
            .flat_map(|f| p["storeCard"][f].as_array().unwrap().iter())
            .map(|f| f["key"].as_str().unwrap().to_owned())
            .collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n, "field keys are unique");
    }

    #[test]
    fn each_limit_is_its_own_error() {
        let mut c = card();
        c.shops = (0..11).map(|i| shop(i, 48.0)).collect();
        assert_eq!(
            c.apple(&id(), &branding()),
            Err(PassError::TooManyLocations { max: 10, count: 11 })
        );
        let mut short = id();
        short.authentication_token = "short".into();
        assert!(matches!(
            card().apple(&short, &branding()),
            Err(PassError::Invalid { field, .. }) if field == "authentication_token"
        ));
        let mut b = branding();
        b.programme_name = "A programme name far too long".into();
        assert!(matches!(
            google_loyalty_class(&b, "3388000000012345678", "club"),
            Err(PassError::TooLong { max: 20, .. })
        ));
        assert!(matches!(
            check_apple_image("icon.png", 30, 29),
            Err(PassError::Image { .. })
        ));
        assert!(check_apple_image("icon@2x.png", 58, 58).is_ok());
        assert!(check_apple_image("logo@3x.png", 480, 150).is_ok());
        assert!(check_apple_image("logo.png", 161, 50).is_err());
        assert!(check_apple_image("background.png", 10, 10).is_err());
        assert!(check_apple_image_set(["logo.png"]).is_err());
    }

    /// What members and the catalog write (a 100-character name, a 2,000-character shop name or
    /// offer title) is shortened on the pass, never a reason to refuse it.
    #[test]
    fn member_and_catalog_text_is_shortened_not_refused() {
        let mut c = card();
        c.member_name = "N".repeat(100);
        c.shops[0].name = "S".repeat(2000);
        let p = c.apple(&id(), &branding()).unwrap();
        let name = p["storeCard"]["secondaryFields"][0]["value"]
            .as_str()
            .unwrap();
        assert_eq!(name.chars().count(), MAX_FIELD_TEXT);
        assert!(name.ends_with('…'));
        let text = p["locations"][0]["relevantText"].as_str().unwrap();
        assert_eq!(text.chars().count(), MAX_FIELD_TEXT);
        let coupon = CouponPass {
            serial: "cp-1".into(),
            coupon_id: "cp-1".into(),
            offer_id: "of-1".into(),
            title: "T".repeat(2000),
            description: "D".repeat(2000),
            code: "TC1.x".into(),
            expires_at: "2026-12-31T00:00:00Z".into(),
            shops: vec![],
            used: false,
        };
        let p = coupon.apple(&id(), &branding()).unwrap();
        assert_eq!(
            p["description"].as_str().unwrap().chars().count(),
            MAX_FIELD_TEXT
        );
        let class = google_offer_class(&branding(), "3388", "of-1", &coupon.title).unwrap();
        assert_eq!(
            class["title"].as_str().unwrap().chars().count(),
            MAX_FIELD_TEXT
        );
    }

    #[test]
    fn google_objects_shorten_the_members_name_and_link_offers() {
        let mut c = card();
        c.linked_offers = vec!["cp-1".into()];
        let o = c.google("3388", "3388.club").unwrap();
        assert_eq!(o["id"], "3388.card-m1");
        assert_eq!(o["accountName"].as_str().unwrap().chars().count(), 20);
        assert_eq!(o["loyaltyPoints"]["balance"]["int"], 1234);
        assert_eq!(o["barcode"]["type"], "EAN_13");
        assert_eq!(o["textModulesData"][0]["body"], "Gold");
        assert_eq!(o["linkedOfferIds"][0], "3388.cp-1");
        assert!(c.google("not-a-number", "x").is_err());
    }

    #[test]
    fn the_nearest_shops_come_first() {
        let shops: Vec<_> = (0..15).map(|i| shop(i, 40.0 + f64::from(i))).collect();
        let near = nearest_shops(
            &shops,
            Some(Position {
                latitude: 54.0,
                longitude: 2.35,
            }),
            20,
        );
        assert_eq!(near.len(), 10);
        assert_eq!(near[0].store_id, "st-14");
        assert_eq!(nearest_shops(&shops, None, 3)[0].store_id, "st-0");
    }
}
