//! Points lots and ledger entries, and purchases, in SQLite.

use rusqlite::{OptionalExtension, params};
use tessera_domain::api::{PointsKind, PurchaseLine};
use tessera_domain::loyalty::{Lot, LoyaltyRules};

use super::{SqliteRepo, json, to_i64, to_u64};
use crate::storage::StorageError;
use crate::storage::repo::{
    EntryRow, Ledger, NewEntry, NewPurchase, PurchaseRow, Purchases, RepoResult,
};

impl Ledger for SqliteRepo<'_> {
    fn loyalty_rules(&mut self) -> RepoResult<LoyaltyRules> {
        let data: Option<String> = self
            .c
            .prepare_cached("SELECT data FROM loyalty_rules WHERE id = 1")?
            .query_row([], |r| r.get(0))
            .optional()?;
        match data {
            Some(d) => serde_json::from_str(&d).map_err(StorageError::backend),
            None => Ok(LoyaltyRules::default()),
        }
    }

    fn put_loyalty_rules(
        &mut self,
        rules: &LoyaltyRules,
        by: &str,
        note: &str,
        now_ms: i64,
    ) -> RepoResult<i64> {
        let data = json(rules)?;
        self.c.execute(
            "INSERT INTO loyalty_rules (id, data, updated_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
            params![data, now_ms],
        )?;
        Ok(self.c.query_row(
            "INSERT INTO loyalty_rules_version (data, published_at, published_by, note)
             VALUES (?1, ?2, ?3, ?4) RETURNING version",
            params![data, now_ms, by, note],
            |r| r.get(0),
        )?)
    }

    fn loyalty_versions(&mut self, limit: u32) -> RepoResult<Vec<(i64, i64, String, String)>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT version, published_at, published_by, note FROM loyalty_rules_version
                 ORDER BY version DESC LIMIT ?1",
            )?
            .query_map([limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?)
    }

    fn loyalty_version(&mut self, version: i64) -> RepoResult<Option<LoyaltyRules>> {
        let data: Option<String> = self
            .c
            .prepare_cached("SELECT data FROM loyalty_rules_version WHERE version = ?1")?
            .query_row([version], |r| r.get(0))
            .optional()?;
        data.map(|d| serde_json::from_str(&d).map_err(StorageError::backend))
            .transpose()
    }

    fn live_lots(&mut self, member_id: &str, now_ms: i64, enough: u64) -> RepoResult<Vec<Lot>> {
        let mut lots = Vec::new();
        let mut covered = 0u64;
        // Soonest expiry first (from the index), then the lots that never expire, oldest first.
        let expiring = "SELECT id, remaining, expires_at FROM points_entry
             WHERE member_id = ?1 AND remaining > 0 AND expires_at > ?2 ORDER BY expires_at, id";
        let lasting = "SELECT id, remaining, expires_at FROM points_entry
             WHERE member_id = ?1 AND remaining > 0 AND expires_at IS NULL ORDER BY id";
        for (sql, with_now) in [(expiring, true), (lasting, false)] {
            let mut stmt = self.c.prepare_cached(sql)?;
            let mut rows = if with_now {
                stmt.query(params![member_id, now_ms])?
            } else {
                stmt.query(params![member_id])?
            };
            while covered < enough
                && let Some(r) = rows.next()?
            {
                let lot = Lot {
                    id: r.get(0)?,
                    remaining: to_u64(r.get(1)?),
                    expires_at_ms: r.get(2)?,
                };
                covered = covered.saturating_add(lot.remaining);
                lots.push(lot);
            }
        }
        Ok(lots)
    }

    fn lapsed_lots(&mut self, member_id: &str, now_ms: i64) -> RepoResult<Vec<Lot>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT id, remaining, expires_at FROM points_entry
                 WHERE member_id = ?1 AND remaining > 0 AND expires_at <= ?2",
            )?
            .query_map(params![member_id, now_ms], |r| {
                Ok(Lot {
                    id: r.get(0)?,
                    remaining: to_u64(r.get(1)?),
                    expires_at_ms: r.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    fn spend_lot(&mut self, lot_id: i64, points: u64) -> RepoResult<()> {
        self.c
            .prepare_cached("UPDATE points_entry SET remaining = remaining - ?2 WHERE id = ?1")?
            .execute(params![lot_id, to_i64(points)])?;
        Ok(())
    }

    fn append_entry(&mut self, e: &NewEntry<'_>) -> RepoResult<i64> {
        // The member's running total of qualifying points, for `qualifying_before`.
        let total: i64 = if e.qualifying == 0 {
            0
        } else {
            self.c
                .prepare_cached(
                    "SELECT qualifying_total FROM points_entry
                     WHERE member_id = ?1 AND qualifying != 0
                     ORDER BY created_at DESC, id DESC LIMIT 1",
                )?
                .query_row([e.member_id], |r| r.get::<_, i64>(0))
                .optional()?
                .unwrap_or(0)
                + e.qualifying
        };
        let (remaining, expires_at) = e.lot.map_or((0, None), |(n, at)| (to_i64(n), at));
        self.c
            .prepare_cached(
                "INSERT INTO points_entry (member_id, kind, points, qualifying, qualifying_total,
                   reason, created_at, remaining, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                e.member_id,
                e.kind.as_str(),
                e.points,
                e.qualifying,
                total,
                e.reason,
                e.at_ms,
                remaining,
                expires_at
            ])?;
        Ok(self.c.last_insert_rowid())
    }

    fn qualifying_before(&mut self, member_id: &str, before_ms: i64) -> RepoResult<i64> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT qualifying_total FROM points_entry
                 WHERE member_id = ?1 AND qualifying != 0 AND created_at < ?2
                 ORDER BY created_at DESC, id DESC LIMIT 1",
            )?
            .query_row(params![member_id, before_ms], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    fn balance(&mut self, member_id: &str) -> RepoResult<u64> {
        let b: Option<i64> = self
            .c
            .prepare_cached("SELECT points_balance FROM member WHERE id = ?1")?
            .query_row([member_id], |r| r.get(0))
            .optional()?;
        b.map(to_u64).ok_or(StorageError::NotFound)
    }

    fn add_balance(&mut self, member_id: &str, delta: i64) -> RepoResult<()> {
        self.c
            .prepare_cached("UPDATE member SET points_balance = points_balance + ?2 WHERE id = ?1")?
            .execute(params![member_id, delta])?;
        Ok(())
    }

    fn expiring(&mut self, member_id: &str, from_ms: i64, to_ms: i64) -> RepoResult<u64> {
        let n: i64 = self
            .c
            .prepare_cached(
                "SELECT coalesce(sum(remaining), 0) FROM points_entry
                 WHERE member_id = ?1 AND remaining > 0 AND expires_at >= ?2 AND expires_at < ?3",
            )?
            .query_row(params![member_id, from_ms, to_ms], |r| r.get(0))?;
        Ok(to_u64(n))
    }

    fn next_expiry(&mut self, member_id: &str, now_ms: i64) -> RepoResult<Option<i64>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT min(expires_at) FROM points_entry
                 WHERE member_id = ?1 AND remaining > 0 AND expires_at > ?2",
            )?
            .query_row(params![member_id, now_ms], |r| r.get(0))?)
    }

    fn members_with_lapsed_lots(&mut self, now_ms: i64, limit: u32) -> RepoResult<Vec<String>> {
        self.lapsed_members(now_ms, limit)
    }

    fn entries(&mut self, member_id: &str, limit: u32) -> RepoResult<Vec<EntryRow>> {
        let mut stmt = self.c.prepare_cached(
            "SELECT kind, points, reason, created_at FROM points_entry WHERE member_id = ?1
             ORDER BY created_at DESC, id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![member_id, limit], |r| {
            <(String, i64, String, i64)>::try_from(r)
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, points, reason, at_ms) = row?;
            out.push(EntryRow {
                kind: PointsKind::parse(&kind)
                    .ok_or_else(|| StorageError::backend(format!("points kind {kind}")))?,
                points,
                reason,
                at_ms,
            });
        }
        Ok(out)
    }
}

impl SqliteRepo<'_> {
    pub(super) fn lapsed_members(&mut self, now_ms: i64, limit: u32) -> RepoResult<Vec<String>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT DISTINCT member_id FROM points_entry
                 WHERE remaining > 0 AND expires_at <= ?1 ORDER BY member_id LIMIT ?2",
            )?
            .query_map(params![now_ms, limit], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }
}

const PURCHASE: &str = "SELECT id, store_id, member_id, points, total_cents, returned_cents,
    web_coupon_id, lines, occurred_at, recorded_at FROM purchase";

fn purchase_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(PurchaseRow, String)> {
    Ok((
        PurchaseRow {
            id: r.get(0)?,
            store_id: r.get(1)?,
            member_id: r.get(2)?,
            points: to_u64(r.get(3)?),
            total_cents: to_u64(r.get(4)?),
            returned_cents: to_u64(r.get(5)?),
            web_coupon_id: r.get(6)?,
            lines: Vec::new(),
            occurred_ms: r.get(8)?,
            recorded_ms: r.get(9)?,
        },
        r.get(7)?,
    ))
}

fn with_lines((mut row, lines): (PurchaseRow, String)) -> RepoResult<PurchaseRow> {
    row.lines = serde_json::from_str::<Vec<PurchaseLine>>(&lines).map_err(StorageError::backend)?;
    Ok(row)
}

impl Purchases for SqliteRepo<'_> {
    fn receipt_taken(&mut self, store_id: &str, receipt: &str) -> RepoResult<Option<String>> {
        Ok(self
            .c
            .prepare_cached("SELECT id FROM purchase WHERE store_id = ?1 AND receipt = ?2")?
            .query_row(params![store_id, receipt], |r| r.get(0))
            .optional()?)
    }

    fn live_purchase(&mut self, store_id: &str, receipt: &str) -> RepoResult<Option<PurchaseRow>> {
        self.c
            .prepare_cached(&format!(
                "{PURCHASE} WHERE store_id = ?1 AND receipt = ?2 AND voided_at IS NULL"
            ))?
            .query_row(params![store_id, receipt], purchase_row)
            .optional()?
            .map(with_lines)
            .transpose()
    }

    fn insert_purchase(&mut self, p: &NewPurchase<'_>) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "INSERT INTO purchase (id, store_id, till_id, receipt, member_id, total_cents, lines,
                   occurred_at, recorded_at, points, web_coupon_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                p.id,
                p.store_id,
                p.till_id,
                p.receipt,
                p.member_id,
                to_i64(p.total_cents),
                json(&p.lines)?,
                p.occurred_ms,
                p.recorded_ms,
                to_i64(p.points),
                p.web_coupon_id,
            ])?;
        Ok(())
    }

    fn void_purchase(&mut self, purchase_id: &str, now_ms: i64) -> RepoResult<()> {
        self.c
            .prepare_cached("UPDATE purchase SET voided_at = ?2 WHERE id = ?1")?
            .execute(params![purchase_id, now_ms])?;
        Ok(())
    }

    fn add_returned(&mut self, purchase_id: &str, cents: u64) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "UPDATE purchase SET returned_cents = returned_cents + ?2 WHERE id = ?1",
            )?
            .execute(params![purchase_id, to_i64(cents)])?;
        Ok(())
    }

    fn member_purchases(&mut self, member_id: &str) -> RepoResult<Vec<PurchaseRow>> {
        let mut stmt = self.c.prepare_cached(&format!(
            "{PURCHASE} WHERE member_id = ?1 AND voided_at IS NULL"
        ))?;
        let rows = stmt
            .query_map([member_id], purchase_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(with_lines).collect()
    }
}
