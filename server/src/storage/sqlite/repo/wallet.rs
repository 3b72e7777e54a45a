//! Wallet passes in SQLite.

use rusqlite::{OptionalExtension, params};

use super::SqliteRepo;
use crate::storage::StorageError;
use crate::storage::repo::{PassRow, RepoResult, Wallets};

const PASS: &str = "SELECT serial, member_id, coupon_id, auth_token, shops, digest, pushed_digest,
    updated_at, stale, google FROM wallet_pass";

fn pass(r: &rusqlite::Row<'_>) -> rusqlite::Result<PassRow> {
    Ok(PassRow {
        serial: r.get(0)?,
        member_id: r.get(1)?,
        coupon_id: r.get(2)?,
        auth_token: r.get(3)?,
        shops: r.get(4)?,
        digest: r.get(5)?,
        pushed_digest: r.get(6)?,
        updated_ms: r.get(7)?,
        stale: r.get(8)?,
        google: r.get::<_, i64>(9)? != 0,
    })
}

impl Wallets for SqliteRepo<'_> {
    fn wallet_pass(&mut self, serial: &str) -> RepoResult<Option<PassRow>> {
        Ok(self
            .c
            .prepare_cached(&format!("{PASS} WHERE serial = ?1"))?
            .query_row([serial], pass)
            .optional()?)
    }

    fn insert_wallet_pass(&mut self, p: &PassRow) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "INSERT INTO wallet_pass (serial, member_id, coupon_id, auth_token, shops, digest,
                    pushed_digest, updated_at, stale, google)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (serial) DO NOTHING",
            )?
            .execute(params![
                p.serial,
                p.member_id,
                p.coupon_id,
                p.auth_token,
                p.shops,
                p.digest,
                p.pushed_digest,
                p.updated_ms,
                p.stale,
                i64::from(p.google)
            ])?
            == 1)
    }

    fn pass_changed(&mut self, serial: &str, digest: &str, now_ms: i64) -> RepoResult<()> {
        // Strictly later than the last change: the update tag always moves.
        self.c
            .prepare_cached(
                "UPDATE wallet_pass SET digest = ?2, updated_at = max(?3, updated_at + 1)
                 WHERE serial = ?1",
            )?
            .execute(params![serial, digest, now_ms])?;
        Ok(())
    }

    fn pass_offered_to_google(&mut self, serial: &str) -> RepoResult<()> {
        self.c
            .prepare_cached("UPDATE wallet_pass SET google = 1 WHERE serial = ?1")?
            .execute([serial])?;
        Ok(())
    }

    fn pass_pushed(&mut self, serial: &str, digest: &str, stale: i64) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "UPDATE wallet_pass SET pushed_digest = ?2,
                    stale = CASE WHEN stale = ?3 THEN 0 ELSE stale END
                 WHERE serial = ?1",
            )?
            .execute(params![serial, digest, stale])?;
        Ok(())
    }

    fn stale_passes(&mut self, after: &str, limit: u32) -> RepoResult<Vec<(String, i64)>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT serial, stale FROM wallet_pass WHERE stale > 0 AND serial > ?1
                 ORDER BY serial LIMIT ?2",
            )?
            .query_map(params![after, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?)
    }

    fn register_pass(
        &mut self,
        device_id: &str,
        serial: &str,
        push_token: &str,
        now_ms: i64,
    ) -> RepoResult<bool> {
        let before: Option<String> = self
            .c
            .prepare_cached(
                "SELECT push_token FROM wallet_registration WHERE device_id = ?1 AND serial = ?2",
            )?
            .query_row([device_id, serial], |r| r.get(0))
            .optional()?;
        self.c
            .prepare_cached(
                "INSERT INTO wallet_registration (device_id, serial, push_token, registered_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (device_id, serial) DO UPDATE SET push_token = excluded.push_token",
            )?
            .execute(params![device_id, serial, push_token, now_ms])?;
        Ok(before.is_none())
    }

    fn unregister_pass(&mut self, device_id: &str, serial: &str) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached("DELETE FROM wallet_registration WHERE device_id = ?1 AND serial = ?2")?
            .execute([device_id, serial])?
            == 1)
    }

    fn device_passes(&mut self, device_id: &str, since_ms: i64) -> RepoResult<Vec<(String, i64)>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT p.serial, p.updated_at FROM wallet_registration r
                 JOIN wallet_pass p ON p.serial = r.serial
                 WHERE r.device_id = ?1 AND p.updated_at > ?2 ORDER BY p.serial",
            )?
            .query_map(params![device_id, since_ms], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?)
    }

    fn pass_push_tokens(&mut self, serial: &str) -> RepoResult<Vec<String>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT DISTINCT push_token FROM wallet_registration WHERE serial = ?1
                 ORDER BY push_token",
            )?
            .query_map([serial], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    fn forget_pass_push_token(&mut self, push_token: &str) -> RepoResult<u64> {
        Ok(self
            .c
            .prepare_cached("DELETE FROM wallet_registration WHERE push_token = ?1")?
            .execute([push_token])? as u64)
    }

    fn delete_member_passes(&mut self, member_id: &str) -> RepoResult<u64> {
        self.c
            .prepare_cached(
                "DELETE FROM wallet_registration WHERE serial IN
                    (SELECT serial FROM wallet_pass WHERE member_id = ?1)",
            )?
            .execute([member_id])?;
        Ok(self
            .c
            .prepare_cached("DELETE FROM wallet_pass WHERE member_id = ?1")?
            .execute([member_id])? as u64)
    }

    fn mark_passes_stale(&mut self, member_id: &str) -> RepoResult<()> {
        self.stale_passes_of(member_id)
    }

    fn member_passes(&mut self, member_id: &str) -> RepoResult<Vec<PassRow>> {
        Ok(self
            .c
            .prepare_cached(&format!("{PASS} WHERE member_id = ?1 ORDER BY serial"))?
            .query_map([member_id], pass)?
            .collect::<Result<_, _>>()?)
    }

    fn catalog_program(&mut self) -> RepoResult<Option<tessera_domain::card::Program>> {
        let data: Option<String> = self
            .c
            .prepare_cached(
                "SELECT data FROM catalog_entity WHERE kind = 'program' AND data IS NOT NULL",
            )?
            .query_row([], |r| r.get(0))
            .optional()?;
        data.map(|d| serde_json::from_str(&d).map_err(StorageError::backend))
            .transpose()
    }

    fn catalog_stores(&mut self) -> RepoResult<Vec<tessera_domain::catalog::Store>> {
        let rows: Vec<String> = self
            .c
            .prepare_cached(
                "SELECT data FROM catalog_entity WHERE kind = 'store' AND data IS NOT NULL
                 ORDER BY id",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        rows.iter()
            .map(|d| serde_json::from_str(d).map_err(StorageError::backend))
            .collect()
    }
}
