//! The till's side of the protocol: redemptions, purchases, voids and returns, conflicts, and
//! the till's registration.

use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogError, check_cents, check_id, parse_instant};

use super::*;

/// A till's request to redeem a scanned code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    pub code: String,
    /// The till's receipt number.
    pub receipt: String,
    pub basket_cents: u64,
    /// Set when the till redeemed it offline and is reporting it now: when it did (RFC 3339, the
    /// till's clock). The server checks the coupon as of then; a loser is a recorded conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeemed_offline_at: Option<String>,
}

impl RedeemRequest {
    pub fn validate(&self) -> Result<(), CatalogError> {
        if self.code.is_empty() || self.code.len() > crate::coupon::MAX_CODE {
            return Err(CatalogError::new("code", "1 to 1024 characters"));
        }
        check_receipt("receipt", &self.receipt)?;
        check_cents("basket_cents", self.basket_cents)?;
        if let Some(at) = &self.redeemed_offline_at {
            parse_instant("redeemed_offline_at", at)?;
        }
        Ok(())
    }
}

/// How long a till may stay offline with redemptions and purchases to report.
pub const OFFLINE_WINDOW_MS: i64 = 7 * 86_400_000;

/// A purchase at a till (or the web checkout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    /// Unique per shop.
    pub receipt: String,
    /// The member card scanned at the till, if any.
    #[serde(default)]
    pub card_number: Option<String>,
    /// The rotating member code scanned (`TM1:…`), if shown: the server checks it again and
    /// takes the card from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_code: Option<String>,
    pub lines: Vec<PurchaseLine>,
    /// What was paid, in cents (after discounts).
    pub total_cents: u64,
    /// Set by a till reporting a purchase it recorded offline (RFC 3339, the till's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_offline_at: Option<String>,
}

/// The largest total a till may report: the programme's one bound for money.
pub const MAX_TOTAL_CENTS: u64 = crate::catalog::MAX_CENTS;

impl PurchaseRequest {
    pub fn validate(&self) -> Result<(), CatalogError> {
        check_receipt("receipt", &self.receipt)?;
        if self
            .member_code
            .as_ref()
            .is_some_and(|c| c.is_empty() || c.len() > crate::member_code::MAX_CODE)
        {
            return Err(CatalogError::new("member_code", "1 to 1024 characters"));
        }
        if self.lines.is_empty() || self.lines.len() > MAX_PURCHASE_LINES {
            return Err(CatalogError::new("lines", "1 to 500 lines"));
        }
        let mut sum = 0u64;
        for line in &self.lines {
            check_id("lines.sku", &line.sku)?;
            if let Some(c) = &line.category {
                check_id("lines.category", c)?;
            }
            if line.quantity == 0 || line.quantity > 10_000 {
                return Err(CatalogError::new("lines.quantity", "1 to 10000"));
            }
            check_cents("lines.amount_cents", line.amount_cents)?;
            sum = sum.saturating_add(line.amount_cents);
        }
        check_cents("total_cents", self.total_cents)?;
        check_cents("lines.amount_cents", sum)?;
        if self.total_cents > sum {
            return Err(CatalogError::new(
                "total_cents",
                "more than the lines add up to",
            ));
        }
        if let Some(at) = &self.occurred_offline_at {
            parse_instant("occurred_offline_at", at)?;
        }
        Ok(())
    }
}

/// A receipt number: 1–64 printable characters.
pub fn check_receipt(field: &'static str, receipt: &str) -> Result<(), CatalogError> {
    if receipt.is_empty() || receipt.len() > 64 || receipt.chars().any(char::is_control) {
        return Err(CatalogError::new(field, "1 to 64 printable characters"));
    }
    Ok(())
}

/// What a purchase earned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PurchaseReceipt {
    pub purchase_id: String,
    /// `None`: no card was scanned.
    pub member_id: Option<String>,
    pub points_earned: u64,
    /// The member's balance after it.
    pub points_balance: u64,
    /// Store-to-web: a coupon for the website, when the purchase qualifies.
    pub web_coupon: Option<String>,
}

/// Undo what was recorded under a receipt of this shop (its coupon redemptions and its
/// purchase), within the programme's void window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    pub receipt: String,
    /// Set by a till reporting a void it made offline (RFC 3339, the till's clock): the void
    /// window is checked as of then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voided_offline_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VoidReport {
    pub receipt: String,
    /// Coupons usable again.
    pub coupons_restored: Vec<String>,
    pub purchase_voided: bool,
    pub points_reversed: u64,
}

/// Goods brought back: points earned by the original purchase are taken back in proportion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    /// The original purchase's receipt.
    pub receipt: String,
    /// The original purchase's shop; the till's own shop if absent.
    #[serde(default)]
    pub store_id: Option<String>,
    pub refunded_cents: u64,
}

impl ReturnRequest {
    pub fn validate(&self) -> Result<(), CatalogError> {
        check_receipt("receipt", &self.receipt)?;
        if let Some(store) = &self.store_id {
            check_id("store_id", store)?;
        }
        check_cents("refunded_cents", self.refunded_cents)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReturnReport {
    pub purchase_id: String,
    pub points_reversed: u64,
    /// Points the member had spent already: the balance does not go below zero, the rest is
    /// written off (and reported here).
    pub points_unrecovered: u64,
    pub points_balance: u64,
}

/// A coupon redeemed offline at two tills or more: the first report won; the others are kept
/// for the merchant to review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RedemptionConflict {
    /// The conflict's number (what a resolution names).
    #[serde(default)]
    pub id: u64,
    pub coupon_id: String,
    pub offer_id: String,
    /// The redemption that counts.
    pub winner_store_id: String,
    pub winner_till_id: String,
    pub winner_at: String,
    /// The one that lost: where, its receipt, when the till says it happened, when it reached
    /// the server.
    pub store_id: String,
    pub till_id: String,
    pub receipt: String,
    pub redeemed_offline_at: String,
    pub reported_at: String,
    /// What the merchant decided, once reviewed.
    #[serde(default)]
    pub resolution: Option<ConflictResolution>,
}

/// What the merchant decided about a redemption conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConflictOutcome {
    /// The second use stands; the programme bears the cost.
    Accepted,
    /// The amount was recovered (from the member, or the shop that let it through).
    Recovered,
    /// Passed on for a fraud review.
    Escalated,
}

impl ConflictOutcome {
    pub const ALL: [ConflictOutcome; 3] = [
        ConflictOutcome::Accepted,
        ConflictOutcome::Recovered,
        ConflictOutcome::Escalated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConflictOutcome::Accepted => "accepted",
            ConflictOutcome::Recovered => "recovered",
            ConflictOutcome::Escalated => "escalated",
        }
    }

    pub fn parse(s: &str) -> Option<ConflictOutcome> {
        ConflictOutcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// A reviewed conflict: the outcome, the reviewer's note, who and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConflictResolution {
    pub outcome: ConflictOutcome,
    pub note: String,
    /// The staff account's e-mail address.
    pub resolved_by: String,
    pub resolved_at: String,
}

/// A redemption the server accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Redemption {
    pub coupon_id: String,
    pub offer_id: String,
    pub member_id: String,
    pub store_id: String,
    pub till_id: String,
    /// RFC 3339, the server's clock.
    pub redeemed_at: String,
}

/// Register a till of a shop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TillRegistration {
    pub store_id: String,
}

/// A till's credentials (the token is shown once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TillCredentials {
    pub till_id: String,
    pub store_id: String,
    pub token: String,
}
