//! Push messages: the versioned payload the server sends through FCM and APNs, and its parser.
//!
//! The payload travels under the key `tessera`: an object in an APNs `userInfo`, a JSON string in
//! an FCM data message (whose values are strings). Anything else in the message is the shell's.

use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogError, Offer, check_id, parse_instant};

/// The payload version this build reads.
pub const PUSH_VERSION: u32 = 1;
/// Larger than any FCM or APNs message can be.
pub const MAX_PUSH_BYTES: usize = 8 * 1024;

/// What a push message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PushKind {
    /// An offer to show (and cache, so that a tap opens it offline).
    Offer,
    /// Silent: sync now.
    Sync,
}

/// The `tessera` part of a push message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PushPayload {
    /// The payload's version ([`PUSH_VERSION`]).
    pub v: u32,
    /// Unique per message: a repeat is suppressed.
    pub id: String,
    pub kind: PushKind,
    #[serde(default)]
    pub campaign_id: Option<String>,
    #[serde(default)]
    pub offer: Option<Offer>,
    /// RFC 3339; after it, the message is not shown.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Messages with the same key replace each other on the device.
    #[serde(default)]
    pub collapse_key: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
}

/// Why a push message cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// Not a JSON object.
    #[error("the message is not a JSON object: {reason}")]
    NotJson { reason: String },
    /// No `tessera` key: the message is for the app, not for Tessera.
    #[error("the message has no tessera payload")]
    NotTessera,
    #[error("payload version {version} is not supported (this build reads 1)")]
    UnsupportedVersion { version: u32 },
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("the message is {bytes} bytes, more than any push service delivers")]
    TooLarge { bytes: u64 },
}

fn invalid(field: &str, reason: impl Into<String>) -> PushError {
    PushError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

impl From<CatalogError> for PushError {
    fn from(e: CatalogError) -> Self {
        invalid(e.field, e.reason)
    }
}

impl PushPayload {
    pub fn validate(&self) -> Result<(), PushError> {
        if self.v != PUSH_VERSION {
            return Err(PushError::UnsupportedVersion { version: self.v });
        }
        check_id("push.id", &self.id)?;
        if let Some(c) = &self.campaign_id {
            check_id("push.campaign_id", c)?;
        }
        if let Some(k) = &self.collapse_key {
            check_id("push.collapse_key", k)?;
        }
        // Display text, by the one rule (crate::text).
        use crate::text::{Lines, check_display};
        for (field, text, max, lines) in [
            ("push.title", &self.title, 200, Lines::One),
            ("push.body", &self.body, 1000, Lines::Several),
        ] {
            if let Some(t) = text {
                check_display(field, t, max, true, lines)?;
            }
        }
        if let Some(at) = &self.expires_at {
            parse_instant("push.expires_at", at)?;
        }
        match self.kind {
            PushKind::Offer => {
                let offer = self
                    .offer
                    .as_ref()
                    .ok_or_else(|| invalid("push.offer", "an offer message carries its offer"))?;
                offer.validate()?;
                if self.expires_at.is_none() {
                    return Err(invalid("push.expires_at", "an offer message expires"));
                }
            }
            PushKind::Sync => {
                if self.offer.is_some() {
                    return Err(invalid("push.offer", "a sync message carries no offer"));
                }
            }
        }
        Ok(())
    }
}

/// Read the Tessera payload out of an FCM data message or an APNs `userInfo`, as JSON text.
pub fn parse(message: &str) -> Result<PushPayload, PushError> {
    if message.len() > MAX_PUSH_BYTES {
        return Err(PushError::TooLarge {
            bytes: message.len() as u64,
        });
    }
    let value: serde_json::Value =
        serde_json::from_str(message).map_err(|e| PushError::NotJson {
            reason: e.to_string(),
        })?;
    let object = value.as_object().ok_or_else(|| PushError::NotJson {
        reason: "not an object".into(),
    })?;
    let inner = object.get("tessera").ok_or(PushError::NotTessera)?;
    let inner = match inner {
        serde_json::Value::String(text) => serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| PushError::NotJson {
                reason: format!("tessera: {e}"),
            })?,
        other => other.clone(),
    };
    // The version first, so that a newer payload is reported as such, not as malformed.
    match inner.get("v").and_then(serde_json::Value::as_u64) {
        Some(v) if v != u64::from(PUSH_VERSION) => {
            return Err(PushError::UnsupportedVersion {
                version: u32::try_from(v).unwrap_or(u32::MAX),
            });
        }
        Some(_) => {}
        None => return Err(invalid("push.v", "missing or not a number")),
    }
    let payload: PushPayload =
        serde_json::from_value(inner).map_err(|e| invalid("push", e.to_string()))?;
    payload.validate()?;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer_json() -> serde_json::Value {
        serde_json::json!({
            "id": "of-push-1", "title": "Tea time", "description": "−20 % on loose tea",
            "kind": {"type": "percent_off", "percent": 20},
            "valid_from": "2026-01-01T00:00:00Z", "valid_to": "2027-01-01T00:00:00Z",
            "channel": "in_store", "categories": ["tea"]
        })
    }

    fn payload() -> serde_json::Value {
        serde_json::json!({"v": 1, "id": "push-0001", "kind": "offer", "campaign_id": "cmp-1",
            "offer": offer_json(), "expires_at": "2026-12-01T00:00:00Z", "collapse_key": "tea"})
    }

    #[test]
    fn apns_objects_and_fcm_strings_both_parse() {
        let apns = serde_json::json!({"aps": {"alert": {"title": "x"}}, "tessera": payload()});
        let p = parse(&apns.to_string()).unwrap();
        assert_eq!(p.id, "push-0001");
        let fcm = serde_json::json!({"tessera": payload().to_string(), "other": "app data"});
        assert_eq!(parse(&fcm.to_string()).unwrap(), p);
    }

    #[test]
    fn malformed_messages_get_typed_errors() {
        assert!(matches!(parse("not json"), Err(PushError::NotJson { .. })));
        assert!(matches!(parse("[1]"), Err(PushError::NotJson { .. })));
        assert_eq!(parse(r#"{"aps":{}}"#), Err(PushError::NotTessera));
        assert!(matches!(
            parse(r#"{"tessera":"{oops"}"#),
            Err(PushError::NotJson { .. })
        ));
        let mut newer = payload();
        newer["v"] = 2.into();
        newer["something_new"] = true.into();
        assert_eq!(
            parse(&serde_json::json!({"tessera": newer}).to_string()),
            Err(PushError::UnsupportedVersion { version: 2 })
        );
        let mut no_offer = payload();
        no_offer.as_object_mut().unwrap().remove("offer");
        assert!(matches!(
            parse(&serde_json::json!({"tessera": no_offer}).to_string()),
            Err(PushError::Invalid { field, .. }) if field == "push.offer"
        ));
        let mut bad_offer = payload();
        bad_offer["offer"]["kind"]["percent"] = 0.into();
        assert!(matches!(
            parse(&serde_json::json!({"tessera": bad_offer}).to_string()),
            Err(PushError::Invalid { .. })
        ));
        let huge = format!(r#"{{"tessera":"{}"}}"#, "x".repeat(MAX_PUSH_BYTES));
        assert!(matches!(parse(&huge), Err(PushError::TooLarge { .. })));
        let sync = serde_json::json!({"tessera": {"v": 1, "id": "s-1", "kind": "sync"}});
        assert_eq!(parse(&sync.to_string()).unwrap().kind, PushKind::Sync);
    }
}
