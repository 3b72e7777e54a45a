//! Challenges in SQLite: the rule set, reported events, joins, rewards paid.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use tessera_domain::rfc3339_ms as rfc3339;
use tessera_domain::rules::{Badge, ChallengeJoin, RuleEvent, RuleSet};

use super::{SqliteRepo, json};
use crate::storage::StorageError;
use crate::storage::repo::{Challenges, KeptRules, RepoResult, RewardPaid};

impl Challenges for SqliteRepo<'_> {
    fn rule_versions(&mut self, limit: u32) -> RepoResult<Vec<(i64, i64, String, String)>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT version, published_at, published_by, note FROM rule_version
                 ORDER BY version DESC LIMIT ?1",
            )?
            .query_map([limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?)
    }

    fn rule_version(&mut self, version: i64) -> RepoResult<Option<RuleSet>> {
        self.c
            .prepare_cached("SELECT data FROM rule_version WHERE version = ?1")?
            .query_row([version], |r| r.get::<_, String>(0))
            .optional()?
            .map(|d| serde_json::from_str(&d).map_err(StorageError::backend))
            .transpose()
    }

    fn versioned_rule_set(&mut self) -> RepoResult<Option<(i64, RuleSet)>> {
        self.c
            .prepare_cached(
                "SELECT seq, data FROM catalog_entity
                 WHERE kind = 'rules' AND id = 'rules' AND data IS NOT NULL",
            )?
            .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .optional()?
            .map(|(seq, d)| {
                serde_json::from_str(&d)
                    .map(|rules| (seq, rules))
                    .map_err(StorageError::backend)
            })
            .transpose()
    }

    fn rule_state(&mut self, member_id: &str) -> RepoResult<Option<KeptRules>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT rules_seq, time_zone, joins, state FROM rule_state WHERE member_id = ?1",
            )?
            .query_row([member_id], |r| {
                Ok(KeptRules {
                    rules_seq: r.get(0)?,
                    time_zone: r.get(1)?,
                    joins: r.get(2)?,
                    state: r.get(3)?,
                })
            })
            .optional()?)
    }

    fn put_rule_state(&mut self, member_id: &str, k: &KeptRules) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "INSERT INTO rule_state (member_id, rules_seq, time_zone, joins, state)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (member_id) DO UPDATE SET rules_seq = excluded.rules_seq,
                   time_zone = excluded.time_zone, joins = excluded.joins, state = excluded.state",
            )?
            .execute(params![
                member_id,
                k.rules_seq,
                k.time_zone,
                k.joins,
                k.state
            ])?;
        Ok(())
    }

    fn forget_rule_state(&mut self, member_id: &str) -> RepoResult<()> {
        self.c
            .prepare_cached("DELETE FROM rule_state WHERE member_id = ?1")?
            .execute([member_id])?;
        Ok(())
    }

    fn note_applied(
        &mut self,
        member_id: &str,
        event_id: &str,
        at_ms: i64,
    ) -> RepoResult<Option<i64>> {
        let inserted = self
            .c
            .prepare_cached(
                "INSERT OR IGNORE INTO rule_applied (member_id, event_id, at_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![member_id, event_id, at_ms])?;
        if inserted == 1 {
            return Ok(None);
        }
        Ok(Some(
            self.c
                .prepare_cached(
                    "SELECT at_ms FROM rule_applied WHERE member_id = ?1 AND event_id = ?2",
                )?
                .query_row([member_id, event_id], |r| r.get(0))?,
        ))
    }

    fn reset_applied(&mut self, member_id: &str, events: &[(&str, i64)]) -> RepoResult<()> {
        self.c
            .prepare_cached("DELETE FROM rule_applied WHERE member_id = ?1")?
            .execute([member_id])?;
        let mut insert = self.c.prepare_cached(
            "INSERT INTO rule_applied (member_id, event_id, at_ms) VALUES (?1, ?2, ?3)",
        )?;
        for (id, at) in events {
            insert.execute(params![member_id, id, at])?;
        }
        Ok(())
    }

    fn reported_events(&mut self, member_id: &str) -> RepoResult<Vec<RuleEvent>> {
        let mut stmt = self
            .c
            .prepare_cached("SELECT data FROM rule_event WHERE member_id = ?1")?;
        let rows = stmt.query_map([member_id], |r| r.get::<_, String>(0))?;
        let mut events = Vec::new();
        for data in rows {
            events.push(serde_json::from_str(&data?).map_err(StorageError::backend)?);
        }
        Ok(events)
    }

    fn insert_reported(
        &mut self,
        member_id: &str,
        event: &RuleEvent,
        now_ms: i64,
    ) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "INSERT OR IGNORE INTO rule_event (member_id, event_id, at_ms, data, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                member_id,
                event.event_id,
                event.at_ms,
                json(event)?,
                now_ms
            ])?
            == 1)
    }

    fn joined(&mut self, member_id: &str) -> RepoResult<Vec<ChallengeJoin>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT challenge_id, joined_at FROM challenge_join WHERE member_id = ?1
                 ORDER BY joined_at, challenge_id",
            )?
            .query_map([member_id], |r| {
                Ok(ChallengeJoin {
                    challenge_id: r.get(0)?,
                    joined_at_ms: r.get(1)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    fn join(&mut self, member_id: &str, challenge_id: &str, at_ms: i64) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "INSERT OR IGNORE INTO challenge_join (member_id, challenge_id, joined_at)
                 VALUES (?1, ?2, ?3)",
            )?
            .execute(params![member_id, challenge_id, at_ms])?;
        Ok(())
    }

    fn paid(&mut self, member_id: &str) -> RepoResult<BTreeMap<String, u32>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT challenge_id, count(*) FROM challenge_reward WHERE member_id = ?1
                 GROUP BY challenge_id",
            )?
            .query_map([member_id], |r| <(String, u32)>::try_from(r))?
            .collect::<Result<_, _>>()?)
    }

    fn record_reward(&mut self, p: &RewardPaid<'_>) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "INSERT INTO challenge_reward (member_id, challenge_id, seq, event_id, completed_at,
                   title, reward, badge, paid_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                p.member_id,
                p.challenge_id,
                p.seq,
                p.event_id,
                p.completed_ms,
                p.title,
                json(p.reward)?,
                p.badge,
                p.paid_ms
            ])?;
        Ok(())
    }

    fn badges(&mut self, member_id: &str) -> RepoResult<Vec<Badge>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT badge, challenge_id, title, completed_at FROM challenge_reward
                 WHERE member_id = ?1 AND badge IS NOT NULL ORDER BY completed_at, challenge_id, seq",
            )?
            .query_map([member_id], |r| {
                Ok(Badge {
                    badge: r.get(0)?,
                    challenge_id: r.get(1)?,
                    title: r.get(2)?,
                    earned_at: rfc3339(r.get(3)?),
                })
            })?
            .collect::<Result<_, _>>()?)
    }
}
