//! Tills in the embedded database: shops as the offer rules see them, registration, token
//! lookup, and the redemption conflicts for the merchant.

use crate::storage::resolution;
use rusqlite::{OptionalExtension, params};
use tessera_domain::api::RedemptionConflict;
use tessera_domain::eligibility::ShopFacts;
use tessera_domain::rfc3339_ms as rfc3339;

use super::*;

impl SqliteStorage {
    pub(super) async fn shop(&self, store_id: String) -> Result<Option<ShopFacts>, StorageError> {
        self.read(move |c| {
            let data: Option<String> = c
                .prepare_cached(
                    "SELECT data FROM catalog_entity
                     WHERE kind = 'store' AND id = ?1 AND data IS NOT NULL",
                )?
                .query_row([store_id], |r| r.get(0))
                .optional()?;
            let Some(data) = data else {
                return Ok(None);
            };
            let store: Store =
                serde_json::from_str(&data).map_err(|e| StorageError::Backend(e.to_string()))?;
            Ok(Some(ShopFacts {
                store_id: store.id,
                tags: store.tags,
                timezone: store.timezone,
            }))
        })
        .await
    }

    pub(super) async fn register_till(
        &self,
        store_id: String,
        token_hash: String,
        now_ms: i64,
    ) -> Result<Option<String>, StorageError> {
        self.write(move |tx| {
            // The web checkout redeems web coupons through the same path, as the shop `web`.
            if store_id != tessera_domain::loyalty::WEB_STORE && !store_exists(tx, &store_id)? {
                return Ok(None);
            }
            let till_id = format!("till-{}", uuid::Uuid::new_v4().simple());
            tx.execute(
                "INSERT INTO till (id, store_id, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![till_id, store_id, token_hash, now_ms],
            )?;
            Ok(Some(till_id))
        })
        .await
    }

    pub(super) async fn till_by_token(
        &self,
        token_hash: String,
    ) -> Result<Option<(String, String)>, StorageError> {
        self.read(move |c| {
            Ok(
                c.prepare_cached("SELECT id, store_id FROM till WHERE token_hash = ?1")?
                    .query_row([token_hash], |r| r.try_into())
                    .optional()?,
            )
        })
        .await
    }

    /// Redemption conflicts for the merchant to review, newest first.
    pub(super) async fn redemption_conflicts(
        &self,
        limit: u32,
    ) -> Result<Vec<RedemptionConflict>, StorageError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT e.coupon_id, c.offer_id, c.redeemed_store, c.redeemed_till, c.redeemed_at,
                        e.store_id, e.till_id, e.receipt, e.till_at, e.at,
                        e.id, r.outcome, r.note, r.resolved_by, r.resolved_at
                 FROM coupon_event e JOIN coupon c ON c.id = e.coupon_id
                 LEFT JOIN conflict_resolution r ON r.event_id = e.id
                 WHERE e.kind = 'conflict' ORDER BY e.at DESC, e.id DESC LIMIT ?1",
            )?;
            let rows = stmt
                .query_map([limit], |r| {
                    Ok(RedemptionConflict {
                        coupon_id: r.get(0)?,
                        offer_id: r.get(1)?,
                        winner_store_id: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                        winner_till_id: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                        winner_at: r.get::<_, Option<i64>>(4)?.map(rfc3339).unwrap_or_default(),
                        store_id: r.get(5)?,
                        till_id: r.get(6)?,
                        receipt: r.get(7)?,
                        redeemed_offline_at: r
                            .get::<_, Option<i64>>(8)?
                            .map(rfc3339)
                            .unwrap_or_default(),
                        reported_at: rfc3339(r.get(9)?),
                        id: crate::storage::to_u64(r.get(10)?),
                        resolution: resolution(r.get(11)?, r.get(12)?, r.get(13)?, r.get(14)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }
}
