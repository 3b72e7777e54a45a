//! Staff accounts, console sessions and the audit log in PostgreSQL (the same statements as
//! SQLite's `storage/sqlite/repo/staff.rs`).

use postgres::Row;

use super::repo::PgRepo;
use crate::storage::StorageError;
use crate::storage::repo::{AuditRow, Kpis, RepoResult, SessionRow, Staff, StaffRow};

const STAFF: &str = "SELECT a.id, a.email, a.name, a.role, a.store_id, a.password_hash, a.disabled,
    a.totp_secret";

fn get<'r, T: postgres::types::FromSql<'r>>(row: &'r Row, i: usize) -> RepoResult<T> {
    row.try_get(i)
        .map_err(|e| StorageError::backend(format!("reading a column: {e}")))
}

fn staff_at(r: &Row) -> RepoResult<StaffRow> {
    Ok(StaffRow {
        id: get(r, 0)?,
        email: get(r, 1)?,
        name: get(r, 2)?,
        role: get(r, 3)?,
        store_id: get(r, 4)?,
        password_hash: get(r, 5)?,
        disabled: get::<i64>(r, 6)? != 0,
        totp_secret: get(r, 7)?,
    })
}

impl Staff for PgRepo<'_, '_> {
    fn insert_staff(&mut self, a: &StaffRow, now_ms: i64) -> RepoResult<bool> {
        let disabled = i64::from(a.disabled);
        Ok(self.exec(
            "INSERT INTO staff_account (id, email, name, role, store_id, password_hash,
                created_at, disabled)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (email) DO NOTHING",
            &[
                &a.id,
                &a.email,
                &a.name,
                &a.role,
                &a.store_id,
                &a.password_hash,
                &now_ms,
                &disabled,
            ],
        )? == 1)
    }

    fn staff_by_email(&mut self, email: &str) -> RepoResult<Option<StaffRow>> {
        self.opt(
            &format!("{STAFF} FROM staff_account a WHERE a.email = $1"),
            &[&email],
        )?
        .map(|r| staff_at(&r))
        .transpose()
    }

    fn staff_accounts(&mut self) -> RepoResult<Vec<StaffRow>> {
        self.rows(
            &format!("{STAFF} FROM staff_account a ORDER BY a.email"),
            &[],
        )?
        .iter()
        .map(staff_at)
        .collect()
    }

    fn staff_by_id(&mut self, id: &str) -> RepoResult<Option<StaffRow>> {
        self.opt(
            &format!("{STAFF} FROM staff_account a WHERE a.id = $1"),
            &[&id],
        )?
        .map(|r| staff_at(&r))
        .transpose()
    }

    fn update_staff(
        &mut self,
        id: &str,
        disabled: Option<bool>,
        password_hash: Option<&str>,
    ) -> RepoResult<bool> {
        let disabled = disabled.map(i64::from);
        Ok(self.exec(
            "UPDATE staff_account SET disabled = COALESCE($2, disabled),
                password_hash = COALESCE($3, password_hash) WHERE id = $1",
            &[&id, &disabled, &password_hash],
        )? == 1)
    }

    fn end_staff_sessions(&mut self, staff_id: &str, keep: &str) -> RepoResult<u64> {
        self.exec(
            "DELETE FROM staff_session WHERE staff_id = $1 AND token_hash <> $2",
            &[&staff_id, &keep],
        )
    }

    fn set_staff_totp(&mut self, id: &str, secret: Option<&str>) -> RepoResult<bool> {
        Ok(self.exec(
            "UPDATE staff_account SET totp_secret = $2, totp_last_step = 0 WHERE id = $1",
            &[&id, &secret],
        )? == 1)
    }

    fn use_totp_step(&mut self, id: &str, step: i64) -> RepoResult<bool> {
        Ok(self.exec(
            "UPDATE staff_account SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2",
            &[&id, &step],
        )? == 1)
    }

    fn insert_session(
        &mut self,
        token_hash: &str,
        staff_id: &str,
        csrf: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> RepoResult<()> {
        self.exec(
            "INSERT INTO staff_session (token_hash, staff_id, csrf, created_at, last_seen,
                expires_at) VALUES ($1, $2, $3, $4, $4, $5)",
            &[&token_hash, &staff_id, &csrf, &now_ms, &expires_ms],
        )?;
        Ok(())
    }

    fn session(&mut self, token_hash: &str) -> RepoResult<Option<SessionRow>> {
        self.opt(
            &format!(
                "{STAFF}, s.csrf, s.last_seen, s.expires_at FROM staff_session s
                 JOIN staff_account a ON a.id = s.staff_id WHERE s.token_hash = $1"
            ),
            &[&token_hash],
        )?
        .map(|r| {
            Ok(SessionRow {
                staff: staff_at(&r)?,
                csrf: get(&r, 8)?,
                last_seen_ms: get(&r, 9)?,
                expires_ms: get(&r, 10)?,
            })
        })
        .transpose()
    }

    fn touch_session(&mut self, token_hash: &str, now_ms: i64) -> RepoResult<()> {
        self.exec(
            "UPDATE staff_session SET last_seen = $2 WHERE token_hash = $1",
            &[&token_hash, &now_ms],
        )?;
        Ok(())
    }

    fn delete_session(&mut self, token_hash: &str) -> RepoResult<()> {
        self.exec(
            "DELETE FROM staff_session WHERE token_hash = $1",
            &[&token_hash],
        )?;
        Ok(())
    }

    fn purge_sessions(&mut self, idle_before_ms: i64, now_ms: i64) -> RepoResult<u64> {
        self.exec(
            "DELETE FROM staff_session WHERE last_seen < $1 OR expires_at <= $2",
            &[&idle_before_ms, &now_ms],
        )
    }

    fn audit(
        &mut self,
        at_ms: i64,
        staff: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> RepoResult<()> {
        self.exec(
            "INSERT INTO audit_log (at, staff, action, subject, detail)
             VALUES ($1, $2, $3, $4, $5)",
            &[&at_ms, &staff, &action, &subject, &detail],
        )?;
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
        Ok(self.exec(
            "INSERT INTO conflict_resolution (event_id, outcome, note, resolved_by, resolved_at)
             SELECT id, $2, $3, $4, $5 FROM coupon_event WHERE id = $1 AND kind = 'conflict'
             ON CONFLICT (event_id) DO NOTHING",
            &[&event_id, &outcome, &note, &staff, &now_ms],
        )? == 1)
    }

    fn audit_log(&mut self, before: i64, limit: u32) -> RepoResult<Vec<AuditRow>> {
        let limit = i64::from(limit);
        self.rows(
            "SELECT seq, at, staff, action, subject, detail FROM audit_log
             WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
            &[&before, &limit],
        )?
        .iter()
        .map(|r| {
            Ok(AuditRow {
                seq: get(r, 0)?,
                at_ms: get(r, 1)?,
                staff: get(r, 2)?,
                action: get(r, 3)?,
                subject: get(r, 4)?,
                detail: get(r, 5)?,
            })
        })
        .collect()
    }
    fn failed_sign_ins(&mut self, email: &str, since_ms: i64) -> RepoResult<Vec<i64>> {
        self.rows(
            "SELECT at FROM audit_log
                 WHERE staff = $1 AND action = 'sign_in_refused' AND at > $2
                   AND at > coalesce((SELECT max(at) FROM audit_log
                                      WHERE staff = $1 AND action = 'sign_in'), 0)
                 ORDER BY at",
            &[&email, &since_ms],
        )?
        .iter()
        .map(|r| {
            r.try_get(0)
                .map_err(|e| StorageError::backend(format!("reading a column: {e}")))
        })
        .collect()
    }
}

impl Kpis for PgRepo<'_, '_> {
    fn add_kpis(&mut self, increments: &[(&str, Option<&str>, i64, i64)]) -> RepoResult<()> {
        let rows = crate::storage::repo::kpi_rows_of(increments);
        if rows.is_empty() {
            return Ok(());
        }
        let values: Vec<String> = (0..rows.len())
            .map(|r| {
                let b = r * 4;
                format!("(${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4)
            })
            .collect();
        let params: Vec<crate::storage::postgres::repo::Param<'_>> = rows
            .iter()
            .flat_map(|(shop, day, metric, delta)| {
                [
                    shop as crate::storage::postgres::repo::Param<'_>,
                    day,
                    metric,
                    delta,
                ]
            })
            .collect();
        self.exec(
            &format!(
                "INSERT INTO kpi_delta (shop, day, metric, value) VALUES {}",
                values.join(", ")
            ),
            &params,
        )?;
        Ok(())
    }

    fn kpi_rows(&mut self, shop: &str, from: i64, to: i64) -> RepoResult<Vec<(String, i64, i64)>> {
        self.rows(
            "SELECT metric, day, sum(value)::bigint FROM (
                SELECT metric, day, value FROM kpi WHERE shop = $1 AND day BETWEEN $2 AND $3
                  AND (metric < 'coupons_' OR metric >= 'coupons`')
                UNION ALL
                SELECT metric, day, value FROM kpi_delta
                WHERE shop = $1 AND day BETWEEN $2 AND $3
                  AND (metric < 'coupons_' OR metric >= 'coupons`')) k
             GROUP BY metric, day
             UNION ALL
             SELECT metric, $2::bigint, sum(value)::bigint FROM (
                SELECT metric, value FROM kpi
                WHERE shop = $1 AND metric >= 'coupons_' AND metric < 'coupons`'
                  AND day BETWEEN $2 AND $3
                UNION ALL
                SELECT metric, value FROM kpi_delta
                WHERE shop = $1 AND day BETWEEN $2 AND $3
                  AND metric >= 'coupons_' AND metric < 'coupons`') c
             GROUP BY metric",
            &[&shop, &from, &to],
        )?
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?)))
        .collect()
    }

    fn kpi_points_before(&mut self, shop: &str, day: i64) -> RepoResult<i64> {
        let sum: Option<i64> = self.value(
            "SELECT coalesce(sum(value), 0)::bigint FROM (
                SELECT value FROM kpi WHERE shop = $1
                  AND metric >= 'points_' AND metric < 'points`' AND day < $2
                UNION ALL
                SELECT value FROM kpi_delta WHERE shop = $1 AND day < $2
                  AND metric >= 'points_' AND metric < 'points`') k",
            &[&shop, &day],
        )?;
        Ok(sum.unwrap_or(0))
    }

    fn kpi_levels_before(
        &mut self,
        shop: &str,
        day: i64,
        metrics: &[String],
    ) -> RepoResult<Vec<(String, i64)>> {
        // Named one by one: each read from the (shop, metric, day) index.
        self.rows(
            "SELECT metric, sum(value)::bigint FROM (
                SELECT metric, value FROM kpi WHERE shop = $1 AND metric = ANY ($3) AND day < $2
                UNION ALL
                SELECT metric, value FROM kpi_delta
                WHERE shop = $1 AND metric = ANY ($3) AND day < $2) k
             GROUP BY metric ORDER BY metric",
            &[&shop, &day, &metrics],
        )?
        .iter()
        .map(|r| {
            Ok((
                r.try_get(0)
                    .map_err(|e| StorageError::backend(format!("reading a column: {e}")))?,
                r.try_get(1)
                    .map_err(|e| StorageError::backend(format!("reading a column: {e}")))?,
            ))
        })
        .collect()
    }

    fn fold_kpis(&mut self, limit: u32) -> RepoResult<u64> {
        // Increments taken by another process's fold at the same moment are skipped; the sums
        // are added with one statement.
        self.exec(
            "WITH taken AS (
                DELETE FROM kpi_delta WHERE id IN (
                    SELECT id FROM kpi_delta ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
                RETURNING shop, day, metric, value),
             summed AS (
                SELECT shop, day, metric, sum(value)::bigint AS value FROM taken
                GROUP BY shop, day, metric)
             INSERT INTO kpi (shop, day, metric, value) SELECT shop, day, metric, value FROM summed
             ON CONFLICT (shop, day, metric) DO UPDATE SET value = kpi.value + excluded.value",
            &[&i64::from(limit)],
        )
    }
}
