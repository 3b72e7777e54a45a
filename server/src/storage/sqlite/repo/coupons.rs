//! Coupons and signing keys in SQLite; redemption is one conditional UPDATE.

use rusqlite::{OptionalExtension, params};
use tessera_domain::catalog::Offer;
use tessera_domain::coupon::CouponKey;

use super::SqliteRepo;
use crate::storage::StorageError;
use crate::storage::repo::{CouponEvent, CouponRow, Coupons, Origin, RedeemedAt, RepoResult};

const COUPON: &str = "SELECT id, member_id, offer_id, code, issued_at, expires_at, origin,
    redeemed_at, redeemed_store, redeemed_till, receipt, revoked_at FROM coupon";

fn coupon_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CouponRow> {
    let origin: String = r.get(6)?;
    Ok(CouponRow {
        id: r.get(0)?,
        member_id: r.get(1)?,
        offer_id: r.get(2)?,
        code: r.get(3)?,
        issued_s: r.get(4)?,
        expires_s: r.get(5)?,
        origin: match origin.as_str() {
            "purchase" => Origin::Purchase,
            "reward" => Origin::Reward,
            "challenge" => Origin::Challenge,
            _ => Origin::Clip,
        },
        redeemed_at_ms: r.get(7)?,
        redeemed_store: r.get(8)?,
        redeemed_till: r.get(9)?,
        receipt: r.get(10)?,
        revoked_at_ms: r.get(11)?,
    })
}

impl Coupons for SqliteRepo<'_> {
    fn offer(&mut self, offer_id: &str) -> RepoResult<Option<Offer>> {
        let data: Option<String> = self
            .c
            .prepare_cached(
                "SELECT data FROM catalog_entity WHERE kind = 'offer' AND id = ?1 AND data IS NOT NULL",
            )?
            .query_row([offer_id], |r| r.get(0))
            .optional()?;
        data.map(|d| serde_json::from_str(&d).map_err(StorageError::backend))
            .transpose()
    }

    fn signing_key(&mut self) -> RepoResult<Option<(String, Vec<u8>)>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT key_id, pkcs8 FROM signing_key ORDER BY created_at DESC LIMIT 1",
            )?
            .query_row([], |r| r.try_into())
            .optional()?)
    }

    fn insert_signing_key(
        &mut self,
        key_id: &str,
        pkcs8: &[u8],
        public_key: &str,
        now_ms: i64,
    ) -> RepoResult<()> {
        self.c.execute(
            "INSERT INTO signing_key (key_id, pkcs8, public_key, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![key_id, pkcs8, public_key, now_ms],
        )?;
        Ok(())
    }

    fn public_keys(&mut self) -> RepoResult<Vec<CouponKey>> {
        let mut stmt = self
            .c
            .prepare_cached("SELECT key_id, public_key FROM signing_key ORDER BY created_at")?;
        let keys = stmt
            .query_map([], |r| {
                Ok(CouponKey {
                    key_id: r.get(0)?,
                    public_key: r.get(1)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(keys)
    }

    fn redeemed_count(
        &mut self,
        member_id: &str,
        offer_id: &str,
        except: Option<&str>,
        limit: u32,
    ) -> RepoResult<u32> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT COUNT(*) FROM (SELECT 1 FROM coupon
                   WHERE member_id = ?1 AND offer_id = ?2 AND redeemed_at IS NOT NULL
                     AND id IS NOT ?3
                   LIMIT ?4)",
            )?
            .query_row(params![member_id, offer_id, except, limit], |r| r.get(0))?)
    }

    fn usable_clip(&mut self, member_id: &str, offer_id: &str, now_s: i64) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT 1 FROM coupon WHERE member_id = ?1 AND offer_id = ?2 AND origin = 'clip'
                   AND redeemed_at IS NULL AND revoked_at IS NULL AND expires_at > ?3",
            )?
            .query_row(params![member_id, offer_id, now_s], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn insert_coupon(&mut self, c: &CouponRow) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "INSERT INTO coupon (id, member_id, offer_id, code, issued_at, expires_at, origin)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                c.id,
                c.member_id,
                c.offer_id,
                c.code,
                c.issued_s,
                c.expires_s,
                c.origin.as_str()
            ])?;
        Ok(())
    }

    fn coupon(&mut self, coupon_id: &str, member_id: &str) -> RepoResult<Option<CouponRow>> {
        Ok(self
            .c
            .prepare_cached(&format!("{COUPON} WHERE id = ?1 AND member_id = ?2"))?
            .query_row(params![coupon_id, member_id], coupon_row)
            .optional()?)
    }

    fn wallet(&mut self, member_id: &str) -> RepoResult<Vec<CouponRow>> {
        Ok(self
            .c
            .prepare_cached(&format!(
                "{COUPON} WHERE member_id = ?1 ORDER BY issued_at DESC, id"
            ))?
            .query_map([member_id], coupon_row)?
            .collect::<Result<_, _>>()?)
    }

    fn mark_redeemed(
        &mut self,
        coupon_id: &str,
        member_id: &str,
        at: &RedeemedAt<'_>,
    ) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "UPDATE coupon SET redeemed_at = ?3, redeemed_store = ?4, redeemed_till = ?5,
                   receipt = ?6
                 WHERE id = ?1 AND member_id = ?2 AND redeemed_at IS NULL AND revoked_at IS NULL",
            )?
            .execute(params![
                coupon_id,
                member_id,
                at.at_ms,
                at.store_id,
                at.till_id,
                at.receipt
            ])?
            == 1)
    }

    fn coupon_event(&mut self, e: &CouponEvent<'_>) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "INSERT INTO coupon_event (coupon_id, kind, store_id, till_id, receipt, till_at, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                e.coupon_id,
                e.kind.as_str(),
                e.store_id,
                e.till_id,
                e.receipt,
                e.till_at_ms,
                e.at_ms
            ])?;
        Ok(())
    }

    fn redeemed_under(&mut self, store_id: &str, receipt: &str) -> RepoResult<Vec<CouponRow>> {
        Ok(self
            .c
            .prepare_cached(&format!(
                "{COUPON} WHERE redeemed_store = ?1 AND receipt = ?2 AND redeemed_at IS NOT NULL"
            ))?
            .query_map(params![store_id, receipt], coupon_row)?
            .collect::<Result<_, _>>()?)
    }

    fn unredeem(&mut self, coupon_id: &str) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "UPDATE coupon SET redeemed_at = NULL, redeemed_store = NULL, redeemed_till = NULL,
                   receipt = NULL WHERE id = ?1",
            )?
            .execute([coupon_id])?;
        Ok(())
    }

    fn revoke_unused(&mut self, coupon_id: &str, now_ms: i64) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "UPDATE coupon SET revoked_at = ?2 WHERE id = ?1 AND redeemed_at IS NULL",
            )?
            .execute(params![coupon_id, now_ms])?;
        Ok(())
    }
}

impl crate::storage::repo::Certificates for SqliteRepo<'_> {
    fn insert_certificate(
        &mut self,
        c: &crate::storage::repo::NewCertificate<'_>,
    ) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "INSERT INTO device_certificate (serial, member_id, device_id, public_key,
                   issued_at, not_after) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(rusqlite::params![
                c.serial,
                c.member_id,
                c.device_id,
                c.public_key,
                c.issued_ms,
                c.not_after_ms
            ])?;
        Ok(())
    }

    fn revoke_certificates(
        &mut self,
        member_id: &str,
        device_id: Option<&str>,
        now_ms: i64,
    ) -> RepoResult<u64> {
        Ok(self
            .c
            .prepare_cached(
                "UPDATE device_certificate SET revoked_at = ?3
                 WHERE member_id = ?1 AND (?2 IS NULL OR device_id = ?2)
                   AND revoked_at IS NULL AND not_after > ?3",
            )?
            .execute(rusqlite::params![member_id, device_id, now_ms])? as u64)
    }

    fn revoked_serials(&mut self, now_ms: i64) -> RepoResult<Vec<i64>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT serial FROM device_certificate
                 WHERE revoked_at IS NOT NULL AND not_after > ?1 ORDER BY serial",
            )?
            .query_map([now_ms], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    fn certificate_revoked_at(&mut self, serial: i64) -> RepoResult<Option<Option<i64>>> {
        Ok(self
            .c
            .prepare_cached("SELECT revoked_at FROM device_certificate WHERE serial = ?1")?
            .query_row([serial], |r| r.get(0))
            .optional()?)
    }
}
