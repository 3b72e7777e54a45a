//! Push campaigns in the embedded database: their reservation and their report (who they reach
//! is the `service` module's).

use rusqlite::params;
use tessera_domain::api::CampaignReport;

use super::{CampaignTargets, StorageError};

use super::*;

impl SqliteStorage {
    pub(super) async fn reserve_campaign(
        &self,
        campaign_id: String,
        body: String,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        self.write(move |tx| {
            Ok(tx.execute(
                "INSERT OR IGNORE INTO campaign (id, created_at, body, targeted, sent, failed)
                 VALUES (?1, ?2, ?3, 0, 0, 0)",
                params![campaign_id, now_ms, body],
            )? == 1)
        })
        .await
    }

    pub(super) async fn record_campaign(
        &self,
        campaign_id: String,
        targets: CampaignTargets,
        outcomes: Vec<Result<(), String>>,
        now_ms: i64,
    ) -> Result<CampaignReport, StorageError> {
        self.write(move |tx| {
            let sent = outcomes.iter().filter(|o| o.is_ok()).count() as u64;
            let failed = outcomes.len() as u64 - sent;
            tx.execute(
                "UPDATE campaign SET targeted = ?2, sent = ?3, failed = ?4 WHERE id = ?1",
                params![
                    campaign_id,
                    targets.members as i64,
                    sent as i64,
                    failed as i64
                ],
            )?;
            for (target, outcome) in targets.devices.iter().zip(&outcomes) {
                tx.prepare_cached(
                    "INSERT INTO push_delivery (campaign_id, member_id, device_id, provider, status,
                        error, sent_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    campaign_id,
                    target.member_id,
                    target.device_id,
                    target.provider.as_str(),
                    i64::from(outcome.is_ok()),
                    outcome.as_ref().err(),
                    now_ms
                ])?;
            }
            Ok(CampaignReport {
                campaign_id,
                members: targets.members,
                without_device: targets.without_device,
                sent,
                failed,
            })
        })
        .await
    }
}
