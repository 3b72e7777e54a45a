//! Tills in the embedded database: coupon keys, shops, registration, and a till's requests
//! under their idempotency keys.

use tessera_domain::api::{Problem, RedemptionConflict};

use super::{MutationOutcome, StorageError, StoredAnswer, TillAuth, TillOp};

use super::*;

impl SqliteStorage {
    pub(super) async fn coupon_keys(
        &self,
        now_ms: i64,
    ) -> Result<Vec<tessera_domain::coupon::CouponKey>, StorageError> {
        self.write(move |tx| {
            crate::storage::sqlite::coupons::signing_key(tx, now_ms)?;
            crate::storage::sqlite::coupons::public_keys(tx)
        })
        .await
    }

    pub(super) async fn shop(
        &self,
        store_id: String,
    ) -> Result<Option<tessera_domain::eligibility::ShopFacts>, StorageError> {
        self.read(move |c| crate::storage::sqlite::coupons::shop(c, &store_id))
            .await
    }

    pub(super) async fn register_till(
        &self,
        store_id: String,
        token_hash: String,
        now_ms: i64,
    ) -> Result<Option<String>, StorageError> {
        self.write(move |tx| {
            crate::storage::sqlite::coupons::register_till(tx, &store_id, &token_hash, now_ms)
        })
        .await
    }

    pub(super) async fn till_by_token(
        &self,
        token_hash: String,
    ) -> Result<Option<(String, String)>, StorageError> {
        self.read(move |c| crate::storage::sqlite::coupons::till_by_token(c, &token_hash))
            .await
    }

    pub(super) async fn apply_till_op(
        &self,
        till: TillAuth,
        key: String,
        body_hash: String,
        op: TillOp,
        now_ms: i64,
    ) -> Result<MutationOutcome, StorageError> {
        fn reply<T: serde::Serialize>(r: Result<T, Problem>) -> Result<StoredAnswer, StorageError> {
            match r {
                Ok(body) => answer(200, &body),
                Err(problem) => answer(problem.status, &problem),
            }
        }
        self.write(move |tx| {
            let owner = format!("till:{}", till.till_id);
            once_per_key(tx, &owner, &key, &body_hash, now_ms, |tx| match &op {
                TillOp::Redeem {
                    claims,
                    shop,
                    receipt,
                    offline_at_ms,
                } => {
                    let at = crate::storage::sqlite::coupons::RedeemAt {
                        till_id: &till.till_id,
                        store_id: &till.store_id,
                        shop,
                        receipt,
                        offline_at_ms: *offline_at_ms,
                    };
                    reply(crate::storage::sqlite::coupons::redeem(
                        tx, &at, claims, now_ms,
                    )?)
                }
                TillOp::Purchase {
                    request,
                    occurred_ms,
                } => reply(crate::storage::sqlite::loyalty::purchase(
                    tx,
                    &till.till_id,
                    &till.store_id,
                    request,
                    *occurred_ms,
                    now_ms,
                )?),
                TillOp::Void { receipt, at_ms } => reply(crate::storage::sqlite::loyalty::void(
                    tx,
                    &till.till_id,
                    &till.store_id,
                    receipt,
                    *at_ms,
                    now_ms,
                )?),
                TillOp::Return { request } => reply(crate::storage::sqlite::loyalty::return_goods(
                    tx,
                    &till.store_id,
                    request,
                    now_ms,
                )?),
            })
        })
        .await
    }

    pub(super) async fn redemption_conflicts(
        &self,
        limit: u32,
    ) -> Result<Vec<RedemptionConflict>, StorageError> {
        self.read(move |c| crate::storage::sqlite::coupons::conflicts(c, limit))
            .await
    }
}
