//! The points ledger: lots (what was earned, when it expires, what is left), credits and debits
//! (soonest expiry first, never below zero), reversals, and the balance.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tessera_domain::api::PointsKind;
use tessera_domain::loyalty::{Lot, LoyaltyRules, TierState, take};

use super::*;
use crate::storage::StorageError;

/// Live lots at `now_ms` in the order they are spent (soonest expiry first, then the lots that
/// never expire, oldest first), read only until they cover `enough` points: spending does not
/// read a member's whole history.
pub(super) fn lots(
    c: &Connection,
    member_id: &str,
    now_ms: i64,
    enough: u64,
) -> Result<Vec<Lot>, StorageError> {
    let mut lots = Vec::new();
    let mut covered = 0u64;
    // Soonest expiry first (from the index), then the lots that never expire, oldest first.
    let expiring = "SELECT id, remaining, expires_at FROM points_entry
         WHERE member_id = ?1 AND remaining > 0 AND expires_at > ?2 ORDER BY expires_at, id";
    let lasting = "SELECT id, remaining, expires_at FROM points_entry
         WHERE member_id = ?1 AND remaining > 0 AND expires_at IS NULL ORDER BY id";
    for (sql, with_now) in [(expiring, true), (lasting, false)] {
        let mut stmt = c.prepare_cached(sql)?;
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

/// Qualifying points earned in the rolling window: a difference of two running totals, so it
/// costs two index lookups however long the member's history.
pub(super) fn qualifying(
    c: &Connection,
    member_id: &str,
    rules: &LoyaltyRules,
    now_ms: i64,
) -> Result<u64, StorageError> {
    let total_before = |before: i64| -> Result<i64, StorageError> {
        Ok(c.prepare_cached(
            "SELECT qualifying_total FROM points_entry
             WHERE member_id = ?1 AND qualifying != 0 AND created_at < ?2
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )?
        .query_row(params![member_id, before], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
    };
    let sum = total_before(i64::MAX)? - total_before(rules.window_start(now_ms))?;
    Ok(to_u64(sum))
}

pub(super) fn tier_state(
    c: &Connection,
    member_id: &str,
    rules: &LoyaltyRules,
) -> Result<Option<TierState>, StorageError> {
    Ok(
        c.prepare_cached("SELECT tier, tier_since, created_at FROM member WHERE id = ?1")?
            .query_row([member_id], |r| {
                let since: i64 = r.get(1)?;
                let created: i64 = r.get(2)?;
                Ok(TierState {
                    tier: rules.tier_index(&r.get::<_, String>(0)?),
                    since_ms: if since == 0 { created } else { since },
                })
            })
            .optional()?,
    )
}

/// Bring the member up to date at `now_ms`: lapse expired lots (one `expire` entry each) and
/// review the tier. Every caller changes the member and bumps its version once at the end.
pub(crate) fn settle(
    tx: &Transaction<'_>,
    member_id: &str,
    rules: &LoyaltyRules,
    now_ms: i64,
) -> Result<(), StorageError> {
    let lapsed: Vec<(i64, i64, i64)> = tx
        .prepare_cached(
            "SELECT id, remaining, expires_at FROM points_entry
             WHERE member_id = ?1 AND remaining > 0 AND expires_at <= ?2",
        )?
        .query_map(params![member_id, now_ms], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    for (id, remaining, at) in lapsed {
        tx.prepare_cached("UPDATE points_entry SET remaining = 0 WHERE id = ?1")?
            .execute([id])?;
        add_balance(tx, member_id, -remaining)?;
        entry(
            tx,
            member_id,
            PointsKind::Expire,
            -remaining,
            0,
            "expired",
            at,
        )?;
    }
    let Some(current) = tier_state(tx, member_id, rules)? else {
        return Err(StorageError::NotFound);
    };
    let reviewed = rules.review(current, qualifying(tx, member_id, rules, now_ms)?, now_ms);
    let name = &rules.tiers[reviewed.tier.min(rules.tiers.len() - 1)].name;
    tx.prepare_cached("UPDATE member SET tier = ?2, tier_since = ?3 WHERE id = ?1")?
        .execute(params![member_id, name, reviewed.since_ms])?;
    Ok(())
}

/// `member.points_balance` is kept equal to what is left in live lots: every change to a lot
/// changes it by as much, in the same transaction.
pub(super) fn add_balance(
    tx: &Transaction<'_>,
    member_id: &str,
    delta: i64,
) -> Result<(), StorageError> {
    tx.prepare_cached("UPDATE member SET points_balance = points_balance + ?2 WHERE id = ?1")?
        .execute(params![member_id, delta])?;
    Ok(())
}

pub(super) fn entry(
    tx: &Transaction<'_>,
    member_id: &str,
    kind: PointsKind,
    points: i64,
    qualifying: i64,
    reason: &str,
    at: i64,
) -> Result<i64, StorageError> {
    // The member's running total of qualifying points, for `qualifying`.
    let total: i64 = if qualifying == 0 {
        0
    } else {
        tx.prepare_cached(
            "SELECT qualifying_total FROM points_entry WHERE member_id = ?1 AND qualifying != 0
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )?
        .query_row([member_id], |r| r.get::<_, i64>(0))
        .optional()?
        .unwrap_or(0)
            + qualifying
    };
    tx.prepare_cached(
        "INSERT INTO points_entry (member_id, kind, points, qualifying, qualifying_total, reason,
           created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        member_id,
        kind.as_str(),
        points,
        qualifying,
        total,
        reason,
        at
    ])?;
    Ok(tx.last_insert_rowid())
}

/// A new lot of `points`, spendable until the rules' validity runs out, counted towards tiers
/// if `qualifying` (earned points and tier bonuses; not an operator's adjustment).
#[allow(clippy::too_many_arguments)]
pub(super) fn credit(
    tx: &Transaction<'_>,
    member_id: &str,
    kind: PointsKind,
    points: u64,
    qualifying: bool,
    reason: &str,
    rules: &LoyaltyRules,
    now_ms: i64,
) -> Result<(), StorageError> {
    let n = to_i64(points);
    let id = entry(
        tx,
        member_id,
        kind,
        n,
        if qualifying { n } else { 0 },
        reason,
        now_ms,
    )?;
    tx.prepare_cached("UPDATE points_entry SET remaining = ?2, expires_at = ?3 WHERE id = ?1")?
        .execute(params![id, n, rules.expiry_of(now_ms)])?;
    add_balance(tx, member_id, n)
}

/// Take `plan` out of the lots and write one ledger entry for it.
pub(super) fn debit(
    tx: &Transaction<'_>,
    member_id: &str,
    kind: PointsKind,
    plan: &[(i64, u64)],
    qualifying: i64,
    reason: &str,
    now_ms: i64,
) -> Result<u64, StorageError> {
    let mut total = 0u64;
    for &(lot, n) in plan {
        tx.prepare_cached("UPDATE points_entry SET remaining = remaining - ?2 WHERE id = ?1")?
            .execute(params![lot, to_i64(n)])?;
        total += n;
    }
    add_balance(tx, member_id, -to_i64(total))?;
    if total > 0 || qualifying != 0 {
        entry(
            tx,
            member_id,
            kind,
            -to_i64(total),
            qualifying,
            reason,
            now_ms,
        )?;
    }
    Ok(total)
}

/// Take back up to `points` (a return or a void): what the balance cannot cover is written off
/// and returned as unrecovered. `qualifying` tier points are taken back in full.
pub(super) fn reverse(
    tx: &Transaction<'_>,
    member_id: &str,
    points: u64,
    reason: &str,
    now_ms: i64,
) -> Result<(u64, u64), StorageError> {
    let plan = take(&lots(tx, member_id, now_ms, points)?, points, now_ms);
    let taken = debit(
        tx,
        member_id,
        PointsKind::Reverse,
        &plan,
        -to_i64(points),
        reason,
        now_ms,
    )?;
    Ok((taken, points - taken))
}

pub(super) fn member_balance(tx: &Transaction<'_>, member_id: &str) -> Result<u64, StorageError> {
    let b: i64 = tx
        .prepare_cached("SELECT points_balance FROM member WHERE id = ?1")?
        .query_row([member_id], |r| r.get(0))?;
    Ok(to_u64(b))
}
