//! Staff accounts, console sessions and the audit log in SQLite.

use rusqlite::{OptionalExtension, params};

use super::SqliteRepo;
use crate::storage::repo::{AuditRow, Kpis, RepoResult, SessionRow, Staff, StaffRow};

const STAFF: &str = "SELECT a.id, a.email, a.name, a.role, a.store_id, a.password_hash, a.disabled,
    a.totp_secret";

fn staff_at(r: &rusqlite::Row<'_>) -> rusqlite::Result<StaffRow> {
    Ok(StaffRow {
        id: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        role: r.get(3)?,
        store_id: r.get(4)?,
        password_hash: r.get(5)?,
        disabled: r.get::<_, i64>(6)? != 0,
        totp_secret: r.get(7)?,
    })
}

impl Staff for SqliteRepo<'_> {
    fn insert_staff(&mut self, a: &StaffRow, now_ms: i64) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "INSERT INTO staff_account (id, email, name, role, store_id, password_hash,
                    created_at, disabled)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (email) DO NOTHING",
            )?
            .execute(params![
                a.id,
                a.email,
                a.name,
                a.role,
                a.store_id,
                a.password_hash,
                now_ms,
                i64::from(a.disabled)
            ])?
            == 1)
    }

    fn staff_by_email(&mut self, email: &str) -> RepoResult<Option<StaffRow>> {
        Ok(self
            .c
            .prepare_cached(&format!("{STAFF} FROM staff_account a WHERE a.email = ?1"))?
            .query_row([email], staff_at)
            .optional()?)
    }

    fn staff_accounts(&mut self) -> RepoResult<Vec<StaffRow>> {
        Ok(self
            .c
            .prepare_cached(&format!("{STAFF} FROM staff_account a ORDER BY a.email"))?
            .query_map([], staff_at)?
            .collect::<Result<_, _>>()?)
    }

    fn staff_by_id(&mut self, id: &str) -> RepoResult<Option<StaffRow>> {
        Ok(self
            .c
            .prepare_cached(&format!("{STAFF} FROM staff_account a WHERE a.id = ?1"))?
            .query_row([id], staff_at)
            .optional()?)
    }

    fn update_staff(
        &mut self,
        id: &str,
        disabled: Option<bool>,
        password_hash: Option<&str>,
    ) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "UPDATE staff_account SET disabled = COALESCE(?2, disabled),
                    password_hash = COALESCE(?3, password_hash) WHERE id = ?1",
            )?
            .execute(params![id, disabled.map(i64::from), password_hash])?
            == 1)
    }

    fn end_staff_sessions(&mut self, staff_id: &str, keep: &str) -> RepoResult<u64> {
        Ok(self
            .c
            .prepare_cached("DELETE FROM staff_session WHERE staff_id = ?1 AND token_hash <> ?2")?
            .execute(params![staff_id, keep])? as u64)
    }

    fn set_staff_totp(&mut self, id: &str, secret: Option<&str>) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "UPDATE staff_account SET totp_secret = ?2, totp_last_step = 0 WHERE id = ?1",
            )?
            .execute(params![id, secret])?
            == 1)
    }

    fn use_totp_step(&mut self, id: &str, step: i64) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "UPDATE staff_account SET totp_last_step = ?2
                 WHERE id = ?1 AND totp_last_step < ?2",
            )?
            .execute(params![id, step])?
            == 1)
    }

    fn insert_session(
        &mut self,
        token_hash: &str,
        staff_id: &str,
        csrf: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "INSERT INTO staff_session (token_hash, staff_id, csrf, created_at, last_seen,
                    expires_at) VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            )?
            .execute(params![token_hash, staff_id, csrf, now_ms, expires_ms])?;
        Ok(())
    }

    fn session(&mut self, token_hash: &str) -> RepoResult<Option<SessionRow>> {
        Ok(self
            .c
            .prepare_cached(&format!(
                "{STAFF}, s.csrf, s.last_seen, s.expires_at FROM staff_session s
                 JOIN staff_account a ON a.id = s.staff_id WHERE s.token_hash = ?1"
            ))?
            .query_row([token_hash], |r| {
                Ok(SessionRow {
                    staff: staff_at(r)?,
                    csrf: r.get(8)?,
                    last_seen_ms: r.get(9)?,
                    expires_ms: r.get(10)?,
                })
            })
            .optional()?)
    }

    fn touch_session(&mut self, token_hash: &str, now_ms: i64) -> RepoResult<()> {
        self.c
            .prepare_cached("UPDATE staff_session SET last_seen = ?2 WHERE token_hash = ?1")?
            .execute(params![token_hash, now_ms])?;
        Ok(())
    }

    fn delete_session(&mut self, token_hash: &str) -> RepoResult<()> {
        self.c
            .prepare_cached("DELETE FROM staff_session WHERE token_hash = ?1")?
            .execute([token_hash])?;
        Ok(())
    }

    fn purge_sessions(&mut self, idle_before_ms: i64, now_ms: i64) -> RepoResult<u64> {
        Ok(self
            .c
            .prepare_cached("DELETE FROM staff_session WHERE last_seen < ?1 OR expires_at <= ?2")?
            .execute(params![idle_before_ms, now_ms])? as u64)
    }

    fn audit(
        &mut self,
        at_ms: i64,
        staff: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "INSERT INTO audit_log (at, staff, action, subject, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![at_ms, staff, action, subject, detail])?;
        Ok(())
    }

    fn resolve_conflict(
        &mut self,
        event_id: i64,
        outcome: &str,
        note: &str,
        staff: &str,
        now_ms: i64,
    ) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "INSERT INTO conflict_resolution (event_id, outcome, note, resolved_by, resolved_at)
                 SELECT id, ?2, ?3, ?4, ?5 FROM coupon_event WHERE id = ?1 AND kind = 'conflict'
                 ON CONFLICT (event_id) DO NOTHING",
            )?
            .execute(params![event_id, outcome, note, staff, now_ms])?
            == 1)
    }

    fn audit_log(&mut self, before: i64, limit: u32) -> RepoResult<Vec<AuditRow>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT seq, at, staff, action, subject, detail FROM audit_log
                 WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
            )?
            .query_map(params![before, limit], |r| {
                Ok(AuditRow {
                    seq: r.get(0)?,
                    at_ms: r.get(1)?,
                    staff: r.get(2)?,
                    action: r.get(3)?,
                    subject: r.get(4)?,
                    detail: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    fn failed_sign_ins(&mut self, email: &str, since_ms: i64) -> RepoResult<Vec<i64>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT at FROM audit_log
                 WHERE staff = ?1 AND action = 'sign_in_refused' AND at > ?2
                   AND at > coalesce((SELECT max(at) FROM audit_log
                                      WHERE staff = ?1 AND action = 'sign_in'), 0)
                 ORDER BY at",
            )?
            .query_map(params![email, since_ms], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }
}

impl Kpis for SqliteRepo<'_> {
    fn add_kpis(&mut self, increments: &[(&str, Option<&str>, i64, i64)]) -> RepoResult<()> {
        let rows = crate::storage::repo::kpi_rows_of(increments);
        if rows.is_empty() {
            return Ok(());
        }
        let values = vec!["(?, ?, ?, ?)"; rows.len()].join(", ");
        let mut add = self.c.prepare_cached(&format!(
            "INSERT INTO kpi_delta (shop, day, metric, value) VALUES {values}"
        ))?;
        let params: Vec<&dyn rusqlite::ToSql> = rows
            .iter()
            .flat_map(|(shop, day, metric, delta)| {
                [
                    shop as &dyn rusqlite::ToSql,
                    day as &dyn rusqlite::ToSql,
                    metric as &dyn rusqlite::ToSql,
                    delta as &dyn rusqlite::ToSql,
                ]
            })
            .collect();
        add.execute(params.as_slice())?;
        Ok(())
    }

    fn kpi_rows(&mut self, shop: &str, from: i64, to: i64) -> RepoResult<Vec<(String, i64, i64)>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT metric, day, sum(value) FROM (
                    SELECT metric, day, value FROM kpi
                    WHERE shop = ?1 AND day BETWEEN ?2 AND ?3
                      AND (metric < 'coupons_' OR metric >= 'coupons`')
                    UNION ALL
                    SELECT metric, day, value FROM kpi_delta
                    WHERE shop = ?1 AND day BETWEEN ?2 AND ?3
                      AND (metric < 'coupons_' OR metric >= 'coupons`'))
                 GROUP BY metric, day
                 UNION ALL
                 SELECT metric, ?2, sum(value) FROM (
                    SELECT metric, value FROM kpi
                    WHERE shop = ?1 AND metric >= 'coupons_' AND metric < 'coupons`'
                      AND day BETWEEN ?2 AND ?3
                    UNION ALL
                    SELECT metric, value FROM kpi_delta
                    WHERE shop = ?1 AND day BETWEEN ?2 AND ?3
                      AND metric >= 'coupons_' AND metric < 'coupons`')
                 GROUP BY metric",
            )?
            .query_map(params![shop, from, to], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?)
    }

    fn kpi_points_before(&mut self, shop: &str, day: i64) -> RepoResult<i64> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT coalesce(sum(value), 0) FROM (
                    SELECT value FROM kpi WHERE shop = ?1
                      AND metric >= 'points_' AND metric < 'points`' AND day < ?2
                    UNION ALL
                    SELECT value FROM kpi_delta WHERE shop = ?1 AND day < ?2
                      AND metric >= 'points_' AND metric < 'points`')",
            )?
            .query_row(params![shop, day], |r| r.get(0))?)
    }

    fn kpi_levels_before(
        &mut self,
        shop: &str,
        day: i64,
        metrics: &[String],
    ) -> RepoResult<Vec<(String, i64)>> {
        // Named one by one: each read from the (shop, metric, day) index.
        let list = (0..metrics.len())
            .map(|k| format!("?{}", k + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT metric, sum(value) FROM (
                SELECT metric, value FROM kpi WHERE shop = ?1 AND metric IN ({list}) AND day < ?2
                UNION ALL
                SELECT metric, value FROM kpi_delta
                WHERE shop = ?1 AND metric IN ({list}) AND day < ?2)
             GROUP BY metric ORDER BY metric"
        );
        let mut params: Vec<&dyn rusqlite::ToSql> = vec![&shop, &day];
        params.extend(metrics.iter().map(|m| m as &dyn rusqlite::ToSql));
        let mut statement = self.c.prepare_cached(&sql)?;
        let rows = statement.query_map(params.as_slice(), |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn fold_kpis(&mut self, limit: u32) -> RepoResult<u64> {
        let taken: Vec<(String, i64, String, i64)> = self
            .c
            .prepare_cached(
                "DELETE FROM kpi_delta WHERE id IN (SELECT id FROM kpi_delta ORDER BY id LIMIT ?1)
                 RETURNING shop, day, metric, value",
            )?
            .query_map([limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?;
        let n = taken.len() as u64;
        let mut sums: std::collections::BTreeMap<(String, i64, String), i64> = Default::default();
        for (shop, day, metric, value) in taken {
            *sums.entry((shop, day, metric)).or_default() += value;
        }
        let mut add = self.c.prepare_cached(
            "INSERT INTO kpi (shop, day, metric, value) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (shop, day, metric) DO UPDATE SET value = value + excluded.value",
        )?;
        for ((shop, day, metric), value) in sums {
            add.execute(params![shop, day, metric, value])?;
        }
        Ok(n)
    }
}
