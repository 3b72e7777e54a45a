//! Push campaigns in the embedded database: who they reach, their reservation and their report.

use rusqlite::params;
use tessera_domain::api::{CampaignAudience, CampaignReport, PushProvider};

use super::{CampaignTargets, PushTarget, StorageError};

use super::*;

impl SqliteStorage {
    pub(super) async fn campaign_targets(
        &self,
        audience: CampaignAudience,
    ) -> Result<CampaignTargets, StorageError> {
        self.read(move |c| {
            let consenting = crate::storage::sqlite::privacy::audience(
                c,
                tessera_domain::consent::Purpose::MarketingOffers,
                tessera_domain::consent::Channel::Push,
            )?;
            let mut targets = CampaignTargets::default();
            for member in consenting {
                let (tier, segments): (String, String) = c
                    .prepare_cached("SELECT tier, segments FROM member WHERE id = ?1")?
                    .query_row([&member], |r| Ok((r.get(0)?, r.get(1)?)))?;
                let segments: Vec<String> = serde_json::from_str(&segments).unwrap_or_default();
                let interests = crate::storage::sqlite::privacy::preferences(c, &member)?.interests;
                let fits = (audience.tiers.is_empty() || audience.tiers.contains(&tier))
                    && (audience.segments.is_empty()
                        || audience.segments.iter().any(|s| segments.contains(s)))
                    && (audience.categories.is_empty()
                        || interests.is_empty()
                        || audience.categories.iter().any(|k| interests.contains(k)));
                if !fits {
                    continue;
                }
                targets.members += 1;
                let devices = c
                    .prepare_cached(
                        "SELECT device_id, provider, token FROM push_token WHERE member_id = ?1
                         ORDER BY device_id",
                    )?
                    .query_map([&member], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                if devices.is_empty() {
                    targets.without_device += 1;
                }
                for (device_id, provider, token) in devices {
                    targets.devices.push(PushTarget {
                        member_id: member.clone(),
                        device_id,
                        provider: if provider == "apns" {
                            PushProvider::Apns
                        } else {
                            PushProvider::Fcm
                        },
                        token,
                    });
                }
            }
            Ok(targets)
        })
        .await
    }

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
