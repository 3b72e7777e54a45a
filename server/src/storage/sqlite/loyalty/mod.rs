//! Points, tiers and purchases in the embedded database. The arithmetic is the core's
//! ([`tessera_domain::loyalty`]); this module stores lots and ledger entries and runs it inside the
//! caller's transaction, so a purchase, its points, its tier review and its web coupon commit
//! together or not at all.

mod ledger;
mod member;
mod till;

pub(crate) use ledger::*;
pub(crate) use member::*;
pub(crate) use till::*;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tessera_domain::api::Problem;
use tessera_domain::loyalty::LoyaltyRules;

use crate::storage::StorageError;

pub(super) const DAY_MS: i64 = 86_400_000;

pub(super) fn backend(e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(e.to_string())
}

pub(super) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The programme's rules (the defaults until the operator sets some).
pub(crate) fn rules(c: &Connection) -> Result<LoyaltyRules, StorageError> {
    let data: Option<String> = c
        .prepare_cached("SELECT data FROM loyalty_rules WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    match data {
        Some(d) => serde_json::from_str(&d).map_err(backend),
        None => Ok(LoyaltyRules::default()),
    }
}

pub(crate) fn put_rules(
    tx: &Transaction<'_>,
    rules: &LoyaltyRules,
    now_ms: i64,
) -> Result<(), StorageError> {
    tx.execute(
        "INSERT INTO loyalty_rules (id, data, updated_at) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
        params![serde_json::to_string(rules).map_err(backend)?, now_ms],
    )?;
    Ok(())
}

pub(super) fn problem(status: u16, code: &str, title: &str, detail: impl Into<String>) -> Problem {
    Problem::new(status, code, title, Some(detail.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_domain::api::{
        PointsKind, PointsView, PurchaseLine, PurchaseReceipt, PurchaseRequest,
    };
    use tessera_domain::loyalty::TierProgress;

    const T0: i64 = 1_800_000_000_000;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "foreign_keys", "ON").unwrap();
        crate::storage::sqlite::MIGRATIONS
            .to_latest(&mut c)
            .unwrap();
        c.execute(
            "INSERT INTO member (id, card_number, holder_name, member_since, tier, created_at)
             VALUES ('m1', '4006381333931', 'Chloé', '2026-01-01', 'Member', ?1)",
            [T0],
        )
        .unwrap();
        c
    }

    fn buy(c: &mut Connection, receipt: &str, cents: u64, at: i64) -> PurchaseReceipt {
        let tx = c.transaction().unwrap();
        let req = PurchaseRequest {
            receipt: receipt.into(),
            card_number: Some("4006381333931".into()),
            lines: vec![PurchaseLine {
                sku: "sku-1".into(),
                category: None,
                collection: None,
                quantity: 1,
                amount_cents: cents,
            }],
            total_cents: cents,
            occurred_offline_at: None,
        };
        let r = purchase(&tx, "till-1", "st-1", &req, at, at)
            .unwrap()
            .unwrap();
        tx.commit().unwrap();
        r
    }

    fn at(c: &mut Connection, now: i64) -> (PointsView, TierProgress) {
        let tx = c.transaction().unwrap();
        settle(&tx, "m1", &rules(&tx).unwrap(), now).unwrap();
        tx.commit().unwrap();
        let (points, tier) = view(c, "m1", now).unwrap();
        (points, tier.unwrap())
    }

    const DAY: i64 = 86_400_000;

    #[test]
    fn points_lapse_after_a_year_and_tiers_step_down_after_their_hold() {
        let mut c = db();
        assert_eq!(buy(&mut c, "R-1", 250_000, T0).points_earned, 2500);
        let (points, tier) = at(&mut c, T0 + DAY);
        assert_eq!((points.balance, tier.tier.as_str()), (2500, "Gold"));
        // Before the year is out: still there, the next lapse announced.
        let (points, tier) = at(&mut c, T0 + 300 * DAY);
        assert_eq!(points.balance, 2500);
        assert_eq!(points.next_expiry.unwrap().points, 2500);
        assert_eq!(tier.tier, "Gold");
        // After a year: the lot lapses (one `expire` entry), and the tier drops one step.
        let (points, tier) = at(&mut c, T0 + 366 * DAY);
        assert_eq!(points.balance, 0);
        assert_eq!(points.ledger[0].kind, PointsKind::Expire);
        assert_eq!(points.ledger[0].points, -2500);
        assert_eq!(tier.tier, "Silver");
        assert_eq!(tier.points_to_keep, 500);
        // Settling again changes nothing: one lapse, one downgrade per hold.
        let (again, tier) = at(&mut c, T0 + 367 * DAY);
        assert_eq!(again.ledger.len(), points.ledger.len());
        assert_eq!(tier.tier, "Silver");
        // A year later still without purchases: Member.
        assert_eq!(at(&mut c, T0 + 732 * DAY).1.tier, "Member");
        // Earning in Member tier: ×1.
        assert_eq!(
            buy(&mut c, "R-2", 10_000, T0 + 733 * DAY).points_earned,
            100
        );
    }

    #[test]
    fn the_read_only_view_agrees_with_a_settled_member() {
        let mut c = db();
        buy(&mut c, "R-1", 60_000, T0);
        let later = T0 + 400 * DAY;
        let before = view(&c, "m1", later).unwrap();
        let after = at(&mut c, later);
        assert_eq!(before.0.balance, after.0.balance);
        assert_eq!(before.1.unwrap(), after.1);
    }
}
