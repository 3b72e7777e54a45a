//! The repository ([`crate::storage::repo`]) over one PostgreSQL transaction: the same statements
//! as SQLite's (`storage/sqlite/repo/`) in PostgreSQL's dialect, each prepared once per pooled
//! connection, run by the job's thread (which drives the connection itself: ADR 0022).

use std::collections::BTreeMap;

use std::collections::{HashMap, HashSet};
use tessera_domain::api::{
    ActivityEvent, AnalyticsEvent, DeviceExport, EventKind, PointsKind, PurchaseLine, PushProvider,
};
use tessera_domain::catalog::Offer;
use tessera_domain::consent::{Channel, ConsentRecord, ConsentSource, Decision, Purpose};
use tessera_domain::coupon::CouponKey;
use tessera_domain::loyalty::{Lot, LoyaltyRules};
use tessera_domain::rfc3339_ms as rfc3339;
use tessera_domain::rules::{Badge, ChallengeJoin, RuleEvent, RuleSet};

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Row, Statement};

use crate::storage::repo::{
    AudiencePage, CampaignRow, CampaignStep, Campaigns, Challenges, CouponEvent, CouponRow,
    Coupons, EntryRow, JobRow, Jobs, KeptRules, Keys, Ledger, MemberRow, Members, NewEntry,
    NewPurchase, Origin, PassRow, Privacy, PurchaseRow, Purchases, RedeemedAt, RepoResult,
    RewardPaid, Wallets,
};
use crate::storage::{NewEnrolment, PushTarget, StorageError, StoredAnswer, to_i64, to_u64};
use tessera_domain::api::CampaignState;

pub(super) type Param<'a> = &'a (dyn ToSql + Sync);

/// The repository over one transaction. `failure` keeps the SQLSTATE of the first statement that
/// failed: the runner retries the whole job when it is a serialization failure or a deadlock,
/// however the job passed the error on.
pub(crate) struct PgRepo<'t, 'c> {
    pub(super) tx: &'t mut postgres::Transaction<'c>,
    /// The connection's prepared statements, by SQL (they outlive transactions).
    pub(super) statements: &'t mut HashMap<String, Statement>,
    pub(super) failure: Option<SqlState>,
}

impl std::fmt::Debug for PgRepo<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRepo")
            .field("failure", &self.failure)
            .finish()
    }
}

/// A driver error as a storage error: a uniqueness violation is [`StorageError::Duplicate`].
pub(super) fn storage_error(e: &postgres::Error) -> StorageError {
    let text = match e.as_db_error() {
        Some(db) => db.to_string(),
        None => e.to_string(),
    };
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StorageError::Duplicate(text)
    } else {
        StorageError::Backend(text)
    }
}

fn column(e: postgres::Error) -> StorageError {
    StorageError::backend(format!("reading a column: {e}"))
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StorageError> {
    serde_json::to_string(v).map_err(StorageError::backend)
}

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StorageError> {
    serde_json::from_str(s).map_err(StorageError::backend)
}

impl PgRepo<'_, '_> {
    fn fail(&mut self, e: postgres::Error) -> StorageError {
        if self.failure.is_none() {
            self.failure = e.code().cloned();
        }
        storage_error(&e)
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(sql)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub(super) fn rows(&mut self, sql: &str, params: &[Param<'_>]) -> RepoResult<Vec<Row>> {
        let result = self
            .statement(sql)
            .and_then(|statement| self.tx.query(&statement, params));
        result.map_err(|e| self.fail(e))
    }

    pub(super) fn opt(&mut self, sql: &str, params: &[Param<'_>]) -> RepoResult<Option<Row>> {
        let result = self
            .statement(sql)
            .and_then(|statement| self.tx.query_opt(&statement, params));
        result.map_err(|e| self.fail(e))
    }

    pub(super) fn one(&mut self, sql: &str, params: &[Param<'_>]) -> RepoResult<Row> {
        self.opt(sql, params)?
            .ok_or_else(|| StorageError::backend("a query that returns one row returned none"))
    }

    pub(super) fn exec(&mut self, sql: &str, params: &[Param<'_>]) -> RepoResult<u64> {
        let result = self
            .statement(sql)
            .and_then(|statement| self.tx.execute(&statement, params));
        result.map_err(|e| self.fail(e))
    }

    /// The first column of the row, if there is a row.
    pub(super) fn value<T: for<'r> postgres::types::FromSql<'r>>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> RepoResult<Option<T>> {
        self.opt(sql, params)?
            .map(|r| r.try_get(0).map_err(column))
            .transpose()
    }
}

fn get<'r, T: postgres::types::FromSql<'r>>(row: &'r Row, i: usize) -> RepoResult<T> {
    row.try_get(i).map_err(column)
}

fn provider(s: &str) -> RepoResult<PushProvider> {
    PushProvider::parse(s).ok_or_else(|| StorageError::backend(format!("push provider {s}")))
}

impl Keys for PgRepo<'_, '_> {
    fn claim_key(
        &mut self,
        owner: &str,
        key: &str,
        body_hash: &str,
        now_ms: i64,
    ) -> RepoResult<bool> {
        // The row is the claim: a concurrent transaction inserting the same key waits for this
        // one, then fails to serialize and is run again, when it finds the key claimed.
        Ok(self.exec(
            "INSERT INTO idempotency_key (member_id, key, body_hash, status, response, created_at)
             VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT (member_id, key) DO NOTHING",
            &[&owner, &key, &body_hash, &now_ms],
        )? == 1)
    }

    fn stored_key(&mut self, owner: &str, key: &str) -> RepoResult<(String, StoredAnswer)> {
        let r = self.one(
            "SELECT body_hash, status, response FROM idempotency_key
             WHERE member_id = $1 AND key = $2",
            &[&owner, &key],
        )?;
        let status: i64 = get(&r, 1)?;
        Ok((
            get(&r, 0)?,
            StoredAnswer {
                status: u16::try_from(status).map_err(StorageError::backend)?,
                body: get(&r, 2)?,
            },
        ))
    }

    fn complete_key(&mut self, owner: &str, key: &str, answer: &StoredAnswer) -> RepoResult<()> {
        self.exec(
            "UPDATE idempotency_key SET status = $3, response = $4
             WHERE member_id = $1 AND key = $2",
            &[&owner, &key, &i64::from(answer.status), &answer.body],
        )?;
        Ok(())
    }
}

impl Members for PgRepo<'_, '_> {
    fn program_exists(&mut self) -> RepoResult<bool> {
        Ok(self
            .value::<Option<String>>(
                "SELECT data FROM catalog_entity WHERE kind = 'program'",
                &[],
            )?
            .flatten()
            .is_some())
    }

    fn insert_member(&mut self, e: &NewEnrolment, now_ms: i64) -> RepoResult<()> {
        self.exec(
            "INSERT INTO member (id, card_number, holder_name, member_since, tier, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &e.member_id,
                &e.card.card_number,
                &e.card.holder_name,
                &e.card.member_since,
                &e.card.tier_label.clone().unwrap_or_default(),
                &now_ms,
            ],
        )?;
        self.exec(
            "INSERT INTO device (id, member_id, platform, app_version, created_at,
                access_hash, access_expires, refresh_hash, refresh_expires)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &e.device_id,
                &e.member_id,
                &e.platform,
                &e.app_version,
                &now_ms,
                &e.tokens.access_hash,
                &e.tokens.access_expires_ms,
                &e.tokens.refresh_hash,
                &e.tokens.refresh_expires_ms,
            ],
        )?;
        Ok(())
    }

    fn member(&mut self, member_id: &str) -> RepoResult<Option<MemberRow>> {
        let Some(r) = self.opt(
            "SELECT card_number, holder_name, member_since, tier, tier_since, created_at,
                segments, birthday FROM member WHERE id = $1",
            &[&member_id],
        )?
        else {
            return Ok(None);
        };
        let segments: String = get(&r, 6)?;
        Ok(Some(MemberRow {
            card_number: get(&r, 0)?,
            holder_name: get(&r, 1)?,
            member_since: get(&r, 2)?,
            tier: get(&r, 3)?,
            tier_since_ms: get(&r, 4)?,
            created_ms: get(&r, 5)?,
            segments: serde_json::from_str(&segments)
                .map_err(|e| StorageError::backend(format!("member segments: {e}")))?,
            birthday: get(&r, 7)?,
        }))
    }

    fn member_by_card(&mut self, card_number: &str) -> RepoResult<Option<String>> {
        self.value(
            "SELECT id FROM member WHERE card_number = $1",
            &[&card_number],
        )
    }

    fn touch_member(&mut self, member_id: &str) -> RepoResult<()> {
        self.exec(
            "UPDATE member SET version = version + 1 WHERE id = $1",
            &[&member_id],
        )?;
        self.stale_passes_of(member_id)
    }

    fn count_mutation(&mut self, member_id: &str, changes_state: bool) -> RepoResult<Option<u64>> {
        let sequence = self.value::<i64>(
            "UPDATE member SET mutations = mutations + 1, version = version + $2 WHERE id = $1
             RETURNING mutations",
            &[&member_id, &i64::from(changes_state)],
        )?;
        if changes_state && sequence.is_some() {
            self.stale_passes_of(member_id)?;
        }
        Ok(sequence.map(to_u64))
    }

    fn set_tier(&mut self, member_id: &str, tier: &str, since_ms: i64) -> RepoResult<()> {
        self.exec(
            "UPDATE member SET tier = $2, tier_since = $3 WHERE id = $1",
            &[&member_id, &tier, &since_ms],
        )?;
        Ok(())
    }

    fn set_birthday(&mut self, member_id: &str, birthday: Option<&str>) -> RepoResult<bool> {
        Ok(self.exec(
            "UPDATE member SET birthday = $2 WHERE id = $1",
            &[&member_id, &birthday],
        )? == 1)
    }

    fn store_exists(&mut self, store_id: &str) -> RepoResult<bool> {
        Ok(self
            .opt(
                "SELECT 1 FROM catalog_entity WHERE kind = 'store' AND id = $1 AND data IS NOT NULL",
                &[&store_id],
            )?
            .is_some())
    }

    fn favourites(&mut self, member_id: &str) -> RepoResult<Vec<String>> {
        self.rows(
            "SELECT store_id FROM favourite_store WHERE member_id = $1 ORDER BY store_id COLLATE \"C\"",
            &[&member_id],
        )?
        .iter()
        .map(|r| get(r, 0))
        .collect()
    }

    fn set_favourite(&mut self, member_id: &str, store_id: &str, on: bool) -> RepoResult<()> {
        let sql = if on {
            "INSERT INTO favourite_store (member_id, store_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM favourite_store WHERE member_id = $1 AND store_id = $2"
        };
        self.exec(sql, &[&member_id, &store_id])?;
        Ok(())
    }

    fn insert_activity(
        &mut self,
        member_id: &str,
        event: &ActivityEvent,
        now_ms: i64,
    ) -> RepoResult<()> {
        self.exec(
            "INSERT INTO event (member_id, event_id, kind, occurred_at, store_id, attributes,
                received_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &member_id,
                &event.event_id,
                &event.kind.as_str(),
                &event.occurred_at,
                &event.store_id,
                &json(&event.attributes)?,
                &now_ms,
            ],
        )?;
        Ok(())
    }

    fn activity(&mut self, member_id: &str) -> RepoResult<Vec<ActivityEvent>> {
        // `COLLATE "C"`: byte order, as SQLite compares text, whatever the database's locale.
        let rows = self.rows(
            "SELECT event_id, kind, occurred_at, store_id, attributes FROM event
             WHERE member_id = $1 ORDER BY occurred_at COLLATE \"C\"",
            &[&member_id],
        )?;
        rows.iter()
            .map(|r| {
                let kind: String = get(r, 1)?;
                let attributes: String = get(r, 4)?;
                Ok(ActivityEvent {
                    event_id: get(r, 0)?,
                    kind: EventKind::parse(&kind).ok_or_else(|| {
                        StorageError::backend(format!("unknown event kind {kind}"))
                    })?,
                    occurred_at: get(r, 2)?,
                    store_id: get(r, 3)?,
                    attributes: parse(&attributes)?,
                })
            })
            .collect()
    }

    fn activity_count(&mut self, member_id: &str) -> RepoResult<u64> {
        Ok(to_u64(
            self.value::<i64>(
                "SELECT count(*) FROM event WHERE member_id = $1",
                &[&member_id],
            )?
            .unwrap_or(0),
        ))
    }

    fn set_push_token(
        &mut self,
        member_id: &str,
        device_id: &str,
        provider: PushProvider,
        token: &str,
        now_ms: i64,
    ) -> RepoResult<()> {
        self.exec(
            "INSERT INTO push_token (device_id, member_id, provider, token, updated_at)
             SELECT id, member_id, $3, $4, $5 FROM device WHERE id = $1 AND member_id = $2
             ON CONFLICT (device_id) DO UPDATE SET member_id = excluded.member_id,
                provider = excluded.provider, token = excluded.token,
                updated_at = excluded.updated_at",
            &[&device_id, &member_id, &provider.as_str(), &token, &now_ms],
        )?;
        Ok(())
    }

    fn push_tokens(&mut self, member_id: &str) -> RepoResult<Vec<(String, PushProvider, String)>> {
        self.rows(
            "SELECT device_id, provider, token FROM push_token WHERE member_id = $1
             ORDER BY device_id COLLATE \"C\"",
            &[&member_id],
        )?
        .iter()
        .map(|r| Ok((get(r, 0)?, provider(&get::<String>(r, 1)?)?, get(r, 2)?)))
        .collect()
    }

    fn push_tokens_of(
        &mut self,
        member_ids: &[String],
    ) -> RepoResult<Vec<Vec<(String, PushProvider, String)>>> {
        let rows = self.rows(
            "SELECT member_id, device_id, provider, token FROM push_token
             WHERE member_id = ANY($1) ORDER BY member_id, device_id COLLATE \"C\"",
            &[&member_ids],
        )?;
        let mut by_member: HashMap<String, Vec<(String, PushProvider, String)>> = HashMap::new();
        for r in &rows {
            by_member.entry(get(r, 0)?).or_default().push((
                get(r, 1)?,
                provider(&get::<String>(r, 2)?)?,
                get(r, 3)?,
            ));
        }
        Ok(member_ids
            .iter()
            .map(|m| by_member.remove(m).unwrap_or_default())
            .collect())
    }

    fn devices(&mut self, member_id: &str) -> RepoResult<Vec<DeviceExport>> {
        self.rows(
            "SELECT id, platform, app_version, created_at FROM device WHERE member_id = $1
             ORDER BY created_at",
            &[&member_id],
        )?
        .iter()
        .map(|r| {
            Ok(DeviceExport {
                device_id: get(r, 0)?,
                platform: get(r, 1)?,
                app_version: get(r, 2)?,
                enrolled_at: rfc3339(get(r, 3)?),
            })
        })
        .collect()
    }
}

fn lot(r: &Row) -> RepoResult<Lot> {
    Ok(Lot {
        id: get(r, 0)?,
        remaining: to_u64(get(r, 1)?),
        expires_at_ms: get(r, 2)?,
    })
}

impl Ledger for PgRepo<'_, '_> {
    fn loyalty_rules(&mut self) -> RepoResult<LoyaltyRules> {
        match self.value::<String>("SELECT data FROM loyalty_rules WHERE id = 1", &[])? {
            Some(d) => parse(&d),
            None => Ok(LoyaltyRules::default()),
        }
    }

    fn put_loyalty_rules(
        &mut self,
        rules: &LoyaltyRules,
        by: &str,
        note: &str,
        now_ms: i64,
    ) -> RepoResult<i64> {
        let data = json(rules)?;
        self.exec(
            "INSERT INTO loyalty_rules (id, data, updated_at) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
            &[&data, &now_ms],
        )?;
        self.value::<i64>(
            "INSERT INTO loyalty_rules_version (data, published_at, published_by, note)
             VALUES ($1, $2, $3, $4) RETURNING version",
            &[&data, &now_ms, &by, &note],
        )?
        .ok_or_else(|| StorageError::backend("no version returned"))
    }

    fn loyalty_versions(&mut self, limit: u32) -> RepoResult<Vec<(i64, i64, String, String)>> {
        self.rows(
            "SELECT version, published_at, published_by, note FROM loyalty_rules_version
             ORDER BY version DESC LIMIT $1",
            &[&i64::from(limit)],
        )?
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?, get(r, 3)?)))
        .collect()
    }

    fn loyalty_version(&mut self, version: i64) -> RepoResult<Option<LoyaltyRules>> {
        self.value::<String>(
            "SELECT data FROM loyalty_rules_version WHERE version = $1",
            &[&version],
        )?
        .map(|d| parse(&d))
        .transpose()
    }

    fn live_lots(&mut self, member_id: &str, now_ms: i64, enough: u64) -> RepoResult<Vec<Lot>> {
        // Soonest expiry first, then the lots that never expire, oldest first; read in pages
        // until they cover `enough`, as SQLite's cursor stops reading.
        let mut lots = Vec::new();
        let mut covered = 0u64;
        const PAGE: i64 = 64;
        for expiring in [true, false] {
            let mut offset = 0i64;
            while covered < enough {
                let page = if expiring {
                    self.rows(
                        "SELECT id, remaining, expires_at FROM points_entry
                         WHERE member_id = $1 AND remaining > 0 AND expires_at > $2
                         ORDER BY expires_at, id LIMIT $3 OFFSET $4",
                        &[&member_id, &now_ms, &PAGE, &offset],
                    )?
                } else {
                    self.rows(
                        "SELECT id, remaining, expires_at FROM points_entry
                         WHERE member_id = $1 AND remaining > 0 AND expires_at IS NULL
                         ORDER BY id LIMIT $2 OFFSET $3",
                        &[&member_id, &PAGE, &offset],
                    )?
                };
                let n = page.len() as i64;
                for r in &page {
                    if covered >= enough {
                        break;
                    }
                    let l = lot(r)?;
                    covered = covered.saturating_add(l.remaining);
                    lots.push(l);
                }
                if n < PAGE {
                    break;
                }
                offset += PAGE;
            }
        }
        Ok(lots)
    }

    fn lapsed_lots(&mut self, member_id: &str, now_ms: i64) -> RepoResult<Vec<Lot>> {
        self.rows(
            "SELECT id, remaining, expires_at FROM points_entry
             WHERE member_id = $1 AND remaining > 0 AND expires_at <= $2",
            &[&member_id, &now_ms],
        )?
        .iter()
        .map(lot)
        .collect()
    }

    fn spend_lot(&mut self, lot_id: i64, points: u64) -> RepoResult<()> {
        self.exec(
            "UPDATE points_entry SET remaining = remaining - $2 WHERE id = $1",
            &[&lot_id, &to_i64(points)],
        )?;
        Ok(())
    }

    fn append_entry(&mut self, e: &NewEntry<'_>) -> RepoResult<i64> {
        let total: i64 = if e.qualifying == 0 {
            0
        } else {
            self.value::<i64>(
                "SELECT qualifying_total FROM points_entry
                 WHERE member_id = $1 AND qualifying != 0
                 ORDER BY created_at DESC, id DESC LIMIT 1",
                &[&e.member_id],
            )?
            .unwrap_or(0)
                + e.qualifying
        };
        let (remaining, expires_at) = e.lot.map_or((0, None), |(n, at)| (to_i64(n), at));
        self.value::<i64>(
            "INSERT INTO points_entry (member_id, kind, points, qualifying, qualifying_total,
               reason, created_at, remaining, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[
                &e.member_id,
                &e.kind.as_str(),
                &e.points,
                &e.qualifying,
                &total,
                &e.reason,
                &e.at_ms,
                &remaining,
                &expires_at,
            ],
        )?
        .ok_or_else(|| StorageError::backend("an insert returned no id"))
    }

    fn qualifying_before(&mut self, member_id: &str, before_ms: i64) -> RepoResult<i64> {
        Ok(self
            .value::<i64>(
                "SELECT qualifying_total FROM points_entry
                 WHERE member_id = $1 AND qualifying != 0 AND created_at < $2
                 ORDER BY created_at DESC, id DESC LIMIT 1",
                &[&member_id, &before_ms],
            )?
            .unwrap_or(0))
    }

    fn balance(&mut self, member_id: &str) -> RepoResult<u64> {
        self.value::<i64>(
            "SELECT points_balance FROM member WHERE id = $1",
            &[&member_id],
        )?
        .map(to_u64)
        .ok_or(StorageError::NotFound)
    }

    fn add_balance(&mut self, member_id: &str, delta: i64) -> RepoResult<()> {
        self.exec(
            "UPDATE member SET points_balance = points_balance + $2 WHERE id = $1",
            &[&member_id, &delta],
        )?;
        Ok(())
    }

    fn expiring(&mut self, member_id: &str, from_ms: i64, to_ms: i64) -> RepoResult<u64> {
        Ok(to_u64(
            self.value::<i64>(
                "SELECT coalesce(sum(remaining), 0)::bigint FROM points_entry
                 WHERE member_id = $1 AND remaining > 0 AND expires_at >= $2 AND expires_at < $3",
                &[&member_id, &from_ms, &to_ms],
            )?
            .unwrap_or(0),
        ))
    }

    fn next_expiry(&mut self, member_id: &str, now_ms: i64) -> RepoResult<Option<i64>> {
        Ok(self
            .value::<Option<i64>>(
                "SELECT min(expires_at) FROM points_entry
                 WHERE member_id = $1 AND remaining > 0 AND expires_at > $2",
                &[&member_id, &now_ms],
            )?
            .flatten())
    }

    fn members_with_lapsed_lots(&mut self, now_ms: i64, limit: u32) -> RepoResult<Vec<String>> {
        self.rows(
            "SELECT DISTINCT member_id COLLATE \"C\" AS member_id FROM points_entry
             WHERE remaining > 0 AND expires_at <= $1 ORDER BY member_id LIMIT $2",
            &[&now_ms, &i64::from(limit)],
        )?
        .iter()
        .map(|r| get(r, 0))
        .collect()
    }

    fn entries(&mut self, member_id: &str, limit: u32) -> RepoResult<Vec<EntryRow>> {
        self.rows(
            "SELECT kind, points, reason, created_at FROM points_entry WHERE member_id = $1
             ORDER BY created_at DESC, id DESC LIMIT $2",
            &[&member_id, &i64::from(limit)],
        )?
        .iter()
        .map(|r| {
            let kind: String = get(r, 0)?;
            Ok(EntryRow {
                kind: PointsKind::parse(&kind)
                    .ok_or_else(|| StorageError::backend(format!("points kind {kind}")))?,
                points: get(r, 1)?,
                reason: get(r, 2)?,
                at_ms: get(r, 3)?,
            })
        })
        .collect()
    }
}

const PURCHASE: &str = "SELECT id, store_id, member_id, points, total_cents, returned_cents,
    web_coupon_id, lines, occurred_at, recorded_at FROM purchase";

fn purchase_row(r: &Row) -> RepoResult<PurchaseRow> {
    let lines: String = get(r, 7)?;
    Ok(PurchaseRow {
        id: get(r, 0)?,
        store_id: get(r, 1)?,
        member_id: get(r, 2)?,
        points: to_u64(get(r, 3)?),
        total_cents: to_u64(get(r, 4)?),
        returned_cents: to_u64(get(r, 5)?),
        web_coupon_id: get(r, 6)?,
        lines: parse::<Vec<PurchaseLine>>(&lines)?,
        occurred_ms: get(r, 8)?,
        recorded_ms: get(r, 9)?,
    })
}

impl Purchases for PgRepo<'_, '_> {
    fn receipt_taken(&mut self, store_id: &str, receipt: &str) -> RepoResult<Option<String>> {
        self.value(
            "SELECT id FROM purchase WHERE store_id = $1 AND receipt = $2",
            &[&store_id, &receipt],
        )
    }

    fn live_purchase(&mut self, store_id: &str, receipt: &str) -> RepoResult<Option<PurchaseRow>> {
        self.opt(
            &format!("{PURCHASE} WHERE store_id = $1 AND receipt = $2 AND voided_at IS NULL"),
            &[&store_id, &receipt],
        )?
        .as_ref()
        .map(purchase_row)
        .transpose()
    }

    fn insert_purchase(&mut self, p: &NewPurchase<'_>) -> RepoResult<()> {
        self.exec(
            "INSERT INTO purchase (id, store_id, till_id, receipt, member_id, total_cents, lines,
               occurred_at, recorded_at, points, web_coupon_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &p.id,
                &p.store_id,
                &p.till_id,
                &p.receipt,
                &p.member_id,
                &to_i64(p.total_cents),
                &json(&p.lines)?,
                &p.occurred_ms,
                &p.recorded_ms,
                &to_i64(p.points),
                &p.web_coupon_id,
            ],
        )?;
        Ok(())
    }

    fn void_purchase(&mut self, purchase_id: &str, now_ms: i64) -> RepoResult<()> {
        self.exec(
            "UPDATE purchase SET voided_at = $2 WHERE id = $1",
            &[&purchase_id, &now_ms],
        )?;
        Ok(())
    }

    fn add_returned(&mut self, purchase_id: &str, cents: u64) -> RepoResult<()> {
        self.exec(
            "UPDATE purchase SET returned_cents = returned_cents + $2 WHERE id = $1",
            &[&purchase_id, &to_i64(cents)],
        )?;
        Ok(())
    }

    fn member_purchases(&mut self, member_id: &str) -> RepoResult<Vec<PurchaseRow>> {
        self.rows(
            &format!("{PURCHASE} WHERE member_id = $1 AND voided_at IS NULL"),
            &[&member_id],
        )?
        .iter()
        .map(purchase_row)
        .collect()
    }
}

const COUPON: &str = "SELECT id, member_id, offer_id, code, issued_at, expires_at, origin,
    redeemed_at, redeemed_store, redeemed_till, receipt, revoked_at FROM coupon";

fn coupon_row(r: &Row) -> RepoResult<CouponRow> {
    let origin: String = get(r, 6)?;
    Ok(CouponRow {
        id: get(r, 0)?,
        member_id: get(r, 1)?,
        offer_id: get(r, 2)?,
        code: get(r, 3)?,
        issued_s: get(r, 4)?,
        expires_s: get(r, 5)?,
        origin: match origin.as_str() {
            "purchase" => Origin::Purchase,
            "reward" => Origin::Reward,
            "challenge" => Origin::Challenge,
            _ => Origin::Clip,
        },
        redeemed_at_ms: get(r, 7)?,
        redeemed_store: get(r, 8)?,
        redeemed_till: get(r, 9)?,
        receipt: get(r, 10)?,
        revoked_at_ms: get(r, 11)?,
    })
}

impl Coupons for PgRepo<'_, '_> {
    fn offer(&mut self, offer_id: &str) -> RepoResult<Option<Offer>> {
        self.value::<String>(
            "SELECT data FROM catalog_entity WHERE kind = 'offer' AND id = $1 AND data IS NOT NULL",
            &[&offer_id],
        )?
        .map(|d| parse(&d))
        .transpose()
    }

    fn signing_key(&mut self) -> RepoResult<Option<(String, Vec<u8>)>> {
        self.opt(
            "SELECT key_id, pkcs8 FROM signing_key ORDER BY created_at DESC LIMIT 1",
            &[],
        )?
        .map(|r| Ok((get(&r, 0)?, get(&r, 1)?)))
        .transpose()
    }

    fn insert_signing_key(
        &mut self,
        key_id: &str,
        pkcs8: &[u8],
        public_key: &str,
        now_ms: i64,
    ) -> RepoResult<()> {
        self.exec(
            "INSERT INTO signing_key (key_id, pkcs8, public_key, created_at) VALUES ($1, $2, $3, $4)",
            &[&key_id, &pkcs8, &public_key, &now_ms],
        )?;
        Ok(())
    }

    fn public_keys(&mut self) -> RepoResult<Vec<CouponKey>> {
        self.rows(
            "SELECT key_id, public_key FROM signing_key ORDER BY created_at",
            &[],
        )?
        .iter()
        .map(|r| {
            Ok(CouponKey {
                key_id: get(r, 0)?,
                public_key: get(r, 1)?,
            })
        })
        .collect()
    }

    fn redeemed_count(
        &mut self,
        member_id: &str,
        offer_id: &str,
        except: Option<&str>,
        limit: u32,
    ) -> RepoResult<u32> {
        let n = self
            .value::<i64>(
                "SELECT count(*) FROM (SELECT 1 FROM coupon
                   WHERE member_id = $1 AND offer_id = $2 AND redeemed_at IS NOT NULL
                     AND id IS DISTINCT FROM $3
                   LIMIT $4) AS redeemed",
                &[&member_id, &offer_id, &except, &i64::from(limit)],
            )?
            .unwrap_or(0);
        u32::try_from(n).map_err(StorageError::backend)
    }

    fn usable_clip(&mut self, member_id: &str, offer_id: &str, now_s: i64) -> RepoResult<bool> {
        Ok(self
            .opt(
                "SELECT 1 FROM coupon WHERE member_id = $1 AND offer_id = $2 AND origin = 'clip'
                   AND redeemed_at IS NULL AND revoked_at IS NULL AND expires_at > $3 LIMIT 1",
                &[&member_id, &offer_id, &now_s],
            )?
            .is_some())
    }

    fn insert_coupon(&mut self, c: &CouponRow) -> RepoResult<()> {
        self.exec(
            "INSERT INTO coupon (id, member_id, offer_id, code, issued_at, expires_at, origin)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &c.id,
                &c.member_id,
                &c.offer_id,
                &c.code,
                &c.issued_s,
                &c.expires_s,
                &c.origin.as_str(),
            ],
        )?;
        Ok(())
    }

    fn coupon(&mut self, coupon_id: &str, member_id: &str) -> RepoResult<Option<CouponRow>> {
        self.opt(
            &format!("{COUPON} WHERE id = $1 AND member_id = $2"),
            &[&coupon_id, &member_id],
        )?
        .as_ref()
        .map(coupon_row)
        .transpose()
    }

    fn wallet(&mut self, member_id: &str) -> RepoResult<Vec<CouponRow>> {
        self.rows(
            &format!("{COUPON} WHERE member_id = $1 ORDER BY issued_at DESC, id COLLATE \"C\""),
            &[&member_id],
        )?
        .iter()
        .map(coupon_row)
        .collect()
    }

    fn mark_redeemed(
        &mut self,
        coupon_id: &str,
        member_id: &str,
        at: &RedeemedAt<'_>,
    ) -> RepoResult<bool> {
        Ok(self.exec(
            "UPDATE coupon SET redeemed_at = $3, redeemed_store = $4, redeemed_till = $5,
               receipt = $6
             WHERE id = $1 AND member_id = $2 AND redeemed_at IS NULL AND revoked_at IS NULL",
            &[
                &coupon_id,
                &member_id,
                &at.at_ms,
                &at.store_id,
                &at.till_id,
                &at.receipt,
            ],
        )? == 1)
    }

    fn coupon_event(&mut self, e: &CouponEvent<'_>) -> RepoResult<()> {
        self.exec(
            "INSERT INTO coupon_event (coupon_id, kind, store_id, till_id, receipt, till_at, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &e.coupon_id,
                &e.kind.as_str(),
                &e.store_id,
                &e.till_id,
                &e.receipt,
                &e.till_at_ms,
                &e.at_ms,
            ],
        )?;
        Ok(())
    }

    fn redeemed_under(&mut self, store_id: &str, receipt: &str) -> RepoResult<Vec<CouponRow>> {
        self.rows(
            &format!(
                "{COUPON} WHERE redeemed_store = $1 AND receipt = $2 AND redeemed_at IS NOT NULL"
            ),
            &[&store_id, &receipt],
        )?
        .iter()
        .map(coupon_row)
        .collect()
    }

    fn unredeem(&mut self, coupon_id: &str) -> RepoResult<()> {
        self.exec(
            "UPDATE coupon SET redeemed_at = NULL, redeemed_store = NULL, redeemed_till = NULL,
               receipt = NULL WHERE id = $1",
            &[&coupon_id],
        )?;
        Ok(())
    }

    fn revoke_unused(&mut self, coupon_id: &str, now_ms: i64) -> RepoResult<()> {
        self.exec(
            "UPDATE coupon SET revoked_at = $2 WHERE id = $1 AND redeemed_at IS NULL",
            &[&coupon_id, &now_ms],
        )?;
        Ok(())
    }
}

impl Challenges for PgRepo<'_, '_> {
    fn rule_versions(&mut self, limit: u32) -> RepoResult<Vec<(i64, i64, String, String)>> {
        self.rows(
            "SELECT version, published_at, published_by, note FROM rule_version
             ORDER BY version DESC LIMIT $1",
            &[&i64::from(limit)],
        )?
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?, get(r, 3)?)))
        .collect()
    }

    fn rule_version(&mut self, version: i64) -> RepoResult<Option<RuleSet>> {
        self.value::<String>(
            "SELECT data FROM rule_version WHERE version = $1",
            &[&version],
        )?
        .map(|d| parse(&d))
        .transpose()
    }

    fn versioned_rule_set(&mut self) -> RepoResult<Option<(i64, RuleSet)>> {
        self.rows(
            "SELECT seq, data FROM catalog_entity
             WHERE kind = 'rules' AND id = 'rules' AND data IS NOT NULL",
            &[],
        )?
        .first()
        .map(|r| Ok((get(r, 0)?, parse(&get::<String>(r, 1)?)?)))
        .transpose()
    }

    fn rule_state(&mut self, member_id: &str) -> RepoResult<Option<KeptRules>> {
        self.rows(
            "SELECT rules_seq, time_zone, joins, state FROM rule_state WHERE member_id = $1",
            &[&member_id],
        )?
        .first()
        .map(|r| {
            Ok(KeptRules {
                rules_seq: get(r, 0)?,
                time_zone: get(r, 1)?,
                joins: get(r, 2)?,
                state: get(r, 3)?,
            })
        })
        .transpose()
    }

    fn put_rule_state(&mut self, member_id: &str, k: &KeptRules) -> RepoResult<()> {
        self.exec(
            "INSERT INTO rule_state (member_id, rules_seq, time_zone, joins, state)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (member_id) DO UPDATE SET rules_seq = excluded.rules_seq,
               time_zone = excluded.time_zone, joins = excluded.joins, state = excluded.state",
            &[&member_id, &k.rules_seq, &k.time_zone, &k.joins, &k.state],
        )?;
        Ok(())
    }

    fn forget_rule_state(&mut self, member_id: &str) -> RepoResult<()> {
        self.exec("DELETE FROM rule_state WHERE member_id = $1", &[&member_id])?;
        Ok(())
    }

    fn note_applied(
        &mut self,
        member_id: &str,
        event_id: &str,
        at_ms: i64,
    ) -> RepoResult<Option<i64>> {
        if self.exec(
            "INSERT INTO rule_applied (member_id, event_id, at_ms) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&member_id, &event_id, &at_ms],
        )? == 1
        {
            return Ok(None);
        }
        self.value(
            "SELECT at_ms FROM rule_applied WHERE member_id = $1 AND event_id = $2",
            &[&member_id, &event_id],
        )
    }

    fn reset_applied(&mut self, member_id: &str, events: &[(&str, i64)]) -> RepoResult<()> {
        self.exec(
            "DELETE FROM rule_applied WHERE member_id = $1",
            &[&member_id],
        )?;
        for chunk in events.chunks(10_000) {
            let ids: Vec<&str> = chunk.iter().map(|(id, _)| *id).collect();
            let times: Vec<i64> = chunk.iter().map(|(_, at)| *at).collect();
            self.exec(
                "INSERT INTO rule_applied (member_id, event_id, at_ms)
                 SELECT $1, id, at FROM unnest($2::text[], $3::bigint[]) AS t(id, at)",
                &[&member_id, &ids, &times],
            )?;
        }
        Ok(())
    }

    fn reported_events(&mut self, member_id: &str) -> RepoResult<Vec<RuleEvent>> {
        self.rows(
            "SELECT data FROM rule_event WHERE member_id = $1",
            &[&member_id],
        )?
        .iter()
        .map(|r| parse(&get::<String>(r, 0)?))
        .collect()
    }

    fn insert_reported(
        &mut self,
        member_id: &str,
        event: &RuleEvent,
        now_ms: i64,
    ) -> RepoResult<bool> {
        Ok(self.exec(
            "INSERT INTO rule_event (member_id, event_id, at_ms, data, received_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[
                &member_id,
                &event.event_id,
                &event.at_ms,
                &json(event)?,
                &now_ms,
            ],
        )? == 1)
    }

    fn joined(&mut self, member_id: &str) -> RepoResult<Vec<ChallengeJoin>> {
        self.rows(
            "SELECT challenge_id, joined_at FROM challenge_join WHERE member_id = $1
             ORDER BY joined_at, challenge_id COLLATE \"C\"",
            &[&member_id],
        )?
        .iter()
        .map(|r| {
            Ok(ChallengeJoin {
                challenge_id: get(r, 0)?,
                joined_at_ms: get(r, 1)?,
            })
        })
        .collect()
    }

    fn join(&mut self, member_id: &str, challenge_id: &str, at_ms: i64) -> RepoResult<()> {
        self.exec(
            "INSERT INTO challenge_join (member_id, challenge_id, joined_at)
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&member_id, &challenge_id, &at_ms],
        )?;
        Ok(())
    }

    fn paid(&mut self, member_id: &str) -> RepoResult<BTreeMap<String, u32>> {
        self.rows(
            "SELECT challenge_id, count(*) FROM challenge_reward WHERE member_id = $1
             GROUP BY challenge_id",
            &[&member_id],
        )?
        .iter()
        .map(|r| {
            let n: i64 = get(r, 1)?;
            Ok((get(r, 0)?, u32::try_from(n).map_err(StorageError::backend)?))
        })
        .collect()
    }

    fn record_reward(&mut self, p: &RewardPaid<'_>) -> RepoResult<()> {
        self.exec(
            "INSERT INTO challenge_reward (member_id, challenge_id, seq, event_id, completed_at,
               title, reward, badge, paid_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &p.member_id,
                &p.challenge_id,
                &i64::from(p.seq),
                &p.event_id,
                &p.completed_ms,
                &p.title,
                &json(p.reward)?,
                &p.badge,
                &p.paid_ms,
            ],
        )?;
        Ok(())
    }

    fn badges(&mut self, member_id: &str) -> RepoResult<Vec<Badge>> {
        self.rows(
            "SELECT badge, challenge_id, title, completed_at FROM challenge_reward
             WHERE member_id = $1 AND badge IS NOT NULL
             ORDER BY completed_at, challenge_id COLLATE \"C\", seq",
            &[&member_id],
        )?
        .iter()
        .map(|r| {
            Ok(Badge {
                badge: get(r, 0)?,
                challenge_id: get(r, 1)?,
                title: get(r, 2)?,
                earned_at: rfc3339(get(r, 3)?),
            })
        })
        .collect()
    }
}

const CONSENT: &str = "record_id, member_id, purpose, channel, decision, text_version,
    text_sha256, decided_at, effective_at, recorded_at, source, recorded_by, app_version";

fn consent_row(r: &Row) -> RepoResult<ConsentRecord> {
    let bad = |what: &str, v: String| StorageError::backend(format!("unknown {what} {v}"));
    let purpose: String = get(r, 2)?;
    let channel: String = get(r, 3)?;
    let decision: String = get(r, 4)?;
    let source: String = get(r, 10)?;
    Ok(ConsentRecord {
        record_id: get(r, 0)?,
        member_id: get(r, 1)?,
        purpose: Purpose::parse(&purpose).ok_or_else(|| bad("purpose", purpose.clone()))?,
        channel: Channel::parse(&channel).ok_or_else(|| bad("channel", channel.clone()))?,
        decision: Decision::parse(&decision).ok_or_else(|| bad("decision", decision.clone()))?,
        text_version: get(r, 5)?,
        text_sha256: get(r, 6)?,
        decided_at: get(r, 7)?,
        effective_at: get(r, 8)?,
        recorded_at: get(r, 9)?,
        source: ConsentSource::parse(&source).ok_or_else(|| bad("source", source.clone()))?,
        recorded_by: get(r, 11)?,
        app_version: get(r, 12)?,
    })
}

impl Privacy for PgRepo<'_, '_> {
    fn consent_records(&mut self, member_id: &str) -> RepoResult<Vec<ConsentRecord>> {
        self.rows(
            &format!(
                "SELECT {CONSENT} FROM consent_record WHERE member_id = $1 ORDER BY effective_ms, seq"
            ),
            &[&member_id],
        )?
        .iter()
        .map(consent_row)
        .collect()
    }

    fn consent_record(&mut self, record_id: &str) -> RepoResult<Option<(ConsentRecord, String)>> {
        self.opt(
            &format!("SELECT {CONSENT}, body_hash FROM consent_record WHERE record_id = $1"),
            &[&record_id],
        )?
        .map(|r| Ok((consent_row(&r)?, get(&r, 13)?)))
        .transpose()
    }

    fn insert_consent(
        &mut self,
        record: &ConsentRecord,
        effective_ms: i64,
        body_hash: &str,
    ) -> RepoResult<()> {
        self.exec(
            &format!(
                "INSERT INTO consent_record ({CONSENT}, effective_ms, body_hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            ),
            &[
                &record.record_id,
                &record.member_id,
                &record.purpose.as_str(),
                &record.channel.as_str(),
                &record.decision.as_str(),
                &record.text_version,
                &record.text_sha256,
                &record.decided_at,
                &record.effective_at,
                &record.recorded_at,
                &record.source.as_str(),
                &record.recorded_by,
                &record.app_version,
                &effective_ms,
                &body_hash,
            ],
        )?;
        Ok(())
    }

    fn preference_values(&mut self, member_id: &str) -> RepoResult<Vec<(String, String)>> {
        self.rows(
            "SELECT field, value FROM preference WHERE member_id = $1",
            &[&member_id],
        )?
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
        .collect()
    }

    fn field_values(&mut self, field: &str) -> RepoResult<Vec<(String, String)>> {
        self.rows(
            "SELECT member_id, value FROM preference WHERE field = $1",
            &[&field],
        )?
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
        .collect()
    }

    fn set_preference(&mut self, member_id: &str, field: &str, value: &str) -> RepoResult<()> {
        self.exec(
            "INSERT INTO preference (member_id, field, value, seq)
             VALUES ($1, $2, $3, nextval('preference_seq'))
             ON CONFLICT (member_id, field) DO UPDATE SET value = excluded.value,
                seq = excluded.seq",
            &[&member_id, &field, &value],
        )?;
        Ok(())
    }

    fn insert_analytics(
        &mut self,
        member_id: &str,
        event: &AnalyticsEvent,
        now_ms: i64,
    ) -> RepoResult<()> {
        self.exec(
            "INSERT INTO analytics_event (member_id, event_id, name, occurred_at, attributes,
               received_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &member_id,
                &event.event_id,
                &event.name,
                &event.occurred_at,
                &serde_json::to_string(&event.attributes).unwrap_or_else(|_| "{}".into()),
                &now_ms,
            ],
        )?;
        Ok(())
    }

    fn analytics(&mut self, member_id: &str) -> RepoResult<Vec<AnalyticsEvent>> {
        self.rows(
            "SELECT event_id, name, occurred_at, attributes FROM analytics_event
             WHERE member_id = $1 ORDER BY occurred_at COLLATE \"C\"",
            &[&member_id],
        )?
        .iter()
        .map(|r| {
            Ok(AnalyticsEvent {
                event_id: get(r, 0)?,
                name: get(r, 1)?,
                occurred_at: get(r, 2)?,
                attributes: parse(&get::<String>(r, 3)?)?,
            })
        })
        .collect()
    }

    fn audience(&mut self, purpose: Purpose, channel: Channel) -> RepoResult<Vec<String>> {
        // The latest decision per member, ordered as the core orders a ledger (effective time,
        // refusals last, record id); `COLLATE "C"`: SQLite's byte order.
        self.rows(
            "SELECT member_id FROM (
                 SELECT member_id, decision, row_number() OVER (
                     PARTITION BY member_id
                     ORDER BY effective_ms DESC, decision != 'granted' DESC,
                        record_id COLLATE \"C\" DESC) AS latest
                 FROM consent_record
                 WHERE purpose = $1 AND channel = $2 AND member_id NOT LIKE 'erased:%') AS d
             WHERE latest = 1 AND decision = 'granted' ORDER BY member_id COLLATE \"C\"",
            &[&purpose.as_str(), &channel.as_str()],
        )?
        .iter()
        .map(|r| get(r, 0))
        .collect()
    }

    fn erase_member(
        &mut self,
        member_id: &str,
        now_ms: i64,
        requested_by: &str,
    ) -> RepoResult<u64> {
        let anonymised = self.exec(
            "UPDATE consent_record
             SET member_id = 'erased:' || replace(gen_random_uuid()::text, '-', '')
             WHERE member_id = $1",
            &[&member_id],
        )?;
        self.exec(
            "DELETE FROM idempotency_key WHERE member_id = $1",
            &[&member_id],
        )?;
        // Coupons and purchases are the merchant's records: kept, detached from the member.
        self.exec(
            "UPDATE coupon SET member_id = 'erased', code = '' WHERE member_id = $1",
            &[&member_id],
        )?;
        self.exec(
            "UPDATE purchase SET member_id = NULL WHERE member_id = $1",
            &[&member_id],
        )?;
        // Their devices' certificates: revoked (tills refuse their codes), detached.
        self.exec(
            "UPDATE device_certificate SET revoked_at = coalesce(revoked_at, $2), member_id = NULL
             WHERE member_id = $1",
            &[&member_id, &now_ms],
        )?;
        self.exec("DELETE FROM member WHERE id = $1", &[&member_id])?;
        self.exec(
            "INSERT INTO erasure (erased_at, consents_anonymised, requested_by) VALUES ($1, $2, $3)",
            &[&now_ms, &to_i64(anonymised), &requested_by],
        )?;
        Ok(anonymised)
    }
}

impl Campaigns for PgRepo<'_, '_> {
    fn insert_campaign(&mut self, id: &str, body: &str, now_ms: i64) -> RepoResult<bool> {
        Ok(self.exec(
            "INSERT INTO campaign (id, created_at, body, targeted, sent, failed, state)
             VALUES ($1, $2, $3, 0, 0, 0, 'queued') ON CONFLICT (id) DO NOTHING",
            &[&id, &now_ms, &body],
        )? == 1)
    }

    fn campaign_ids(&mut self, limit: u32) -> RepoResult<Vec<String>> {
        self.rows(
            "SELECT id FROM campaign ORDER BY created_at DESC, id LIMIT $1",
            &[&i64::from(limit)],
        )?
        .iter()
        .map(|r| get(r, 0))
        .collect()
    }

    fn campaign(&mut self, id: &str) -> RepoResult<Option<CampaignRow>> {
        let Some(r) = self.opt(
            "SELECT body, state, cursor, targeted, without_device, sent, failed, pending
             FROM campaign WHERE id = $1",
            &[&id],
        )?
        else {
            return Ok(None);
        };
        let state: String = get(&r, 1)?;
        Ok(Some(CampaignRow {
            id: id.to_owned(),
            body: get(&r, 0)?,
            state: CampaignState::parse(&state)
                .ok_or_else(|| StorageError::backend(format!("campaign state {state}")))?,
            cursor: get(&r, 2)?,
            members: to_u64(get(&r, 3)?),
            without_device: to_u64(get(&r, 4)?),
            sent: to_u64(get(&r, 5)?),
            failed: to_u64(get(&r, 6)?),
            pending: to_u64(get(&r, 7)?),
        }))
    }

    fn audience_page(
        &mut self,
        purpose: Purpose,
        channel: Channel,
        after: &str,
        limit: u32,
    ) -> RepoResult<AudiencePage> {
        let last: Option<String> = self
            .value::<Option<String>>(
                "SELECT max(id COLLATE \"C\") FROM (SELECT id FROM member
                     WHERE id COLLATE \"C\" > $1 ORDER BY id COLLATE \"C\" LIMIT $2) AS page",
                &[&after, &i64::from(limit)],
            )?
            .flatten();
        let Some(last) = last else {
            return Ok(AudiencePage::default());
        };
        let granted = self
            .rows(
                "SELECT member_id FROM (
                     SELECT member_id, decision, row_number() OVER (
                         PARTITION BY member_id
                         ORDER BY effective_ms DESC, decision != 'granted' DESC,
                            record_id COLLATE \"C\" DESC) AS latest
                     FROM consent_record
                     WHERE purpose = $1 AND channel = $2 AND member_id COLLATE \"C\" > $3
                       AND member_id COLLATE \"C\" <= $4) AS d
                 WHERE latest = 1 AND decision = 'granted' ORDER BY member_id COLLATE \"C\"",
                &[&purpose.as_str(), &channel.as_str(), &after, &last],
            )?
            .iter()
            .map(|r| get(r, 0))
            .collect::<RepoResult<Vec<String>>>()?;
        Ok(AudiencePage {
            granted,
            last: Some(last),
        })
    }

    fn in_shops(&mut self, member_id: &str, shops: &[String]) -> RepoResult<bool> {
        Ok(self
            .value::<bool>(
                "SELECT EXISTS (SELECT 1 FROM favourite_store
                         WHERE member_id = $1 AND store_id = ANY ($2))
                     OR EXISTS (SELECT 1 FROM purchase
                         WHERE member_id = $1 AND voided_at IS NULL AND store_id = ANY ($2))",
                &[&member_id, &shops],
            )?
            .unwrap_or(false))
    }

    fn shops_members(&mut self, shops: &[String]) -> RepoResult<HashSet<String>> {
        self.rows(
            "SELECT member_id FROM favourite_store WHERE store_id = ANY ($1)
             UNION
             SELECT member_id FROM purchase
                 WHERE store_id = ANY ($1) AND voided_at IS NULL AND member_id IS NOT NULL",
            &[&shops],
        )?
        .iter()
        .map(|r| get(r, 0))
        .collect()
    }

    fn tier_members(&mut self, tiers: &[String]) -> RepoResult<HashSet<String>> {
        self.rows("SELECT id FROM member WHERE tier = ANY ($1)", &[&tiers])?
            .iter()
            .map(|r| get(r, 0))
            .collect()
    }

    fn push_device_counts(&mut self) -> RepoResult<HashMap<String, u64>> {
        self.rows(
            "SELECT member_id, count(*) FROM push_token GROUP BY member_id",
            &[],
        )?
        .iter()
        .map(|r| Ok((get::<String>(r, 0)?, to_u64(get::<i64>(r, 1)?))))
        .collect()
    }

    fn pending_delivery(
        &mut self,
        campaign_id: &str,
        t: &PushTarget,
        now_ms: i64,
    ) -> RepoResult<bool> {
        Ok(self.exec(
            "INSERT INTO push_delivery (campaign_id, member_id, device_id, provider, status,
                error, sent_at) VALUES ($1, $2, $3, $4, -1, NULL, $5)
             ON CONFLICT (campaign_id, device_id) DO NOTHING",
            &[
                &campaign_id,
                &t.member_id,
                &t.device_id,
                &t.provider.as_str(),
                &now_ms,
            ],
        )? == 1)
    }

    fn pending_deliveries(
        &mut self,
        campaign_id: &str,
        targets: &[PushTarget],
        now_ms: i64,
    ) -> RepoResult<Vec<bool>> {
        // One statement for the batch: a round trip per device would be most of its cost.
        let members: Vec<&str> = targets.iter().map(|t| t.member_id.as_str()).collect();
        let devices: Vec<&str> = targets.iter().map(|t| t.device_id.as_str()).collect();
        let providers: Vec<&str> = targets.iter().map(|t| t.provider.as_str()).collect();
        let written: std::collections::HashSet<String> = self
            .rows(
                "INSERT INTO push_delivery (campaign_id, member_id, device_id, provider, status,
                    error, sent_at)
                 SELECT $1, m, d, p, -1, NULL, $5
                 FROM unnest($2::text[], $3::text[], $4::text[]) AS t(m, d, p)
                 ON CONFLICT (campaign_id, device_id) DO NOTHING
                 RETURNING device_id",
                &[&campaign_id, &members, &devices, &providers, &now_ms],
            )?
            .iter()
            .map(|r| get(r, 0))
            .collect::<RepoResult<_>>()?;
        Ok(targets
            .iter()
            .map(|t| written.contains(&t.device_id))
            .collect())
    }

    fn delivered_all(
        &mut self,
        campaign_id: &str,
        outcomes: &[(String, Result<(), String>)],
        now_ms: i64,
    ) -> RepoResult<u64> {
        let devices: Vec<&str> = outcomes.iter().map(|(d, _)| d.as_str()).collect();
        let ok: Vec<bool> = outcomes.iter().map(|(_, o)| o.is_ok()).collect();
        let errors: Vec<Option<&str>> = outcomes
            .iter()
            .map(|(_, o)| o.as_ref().err().map(String::as_str))
            .collect();
        let changed = self.rows(
            "UPDATE push_delivery AS d
             SET status = CASE WHEN o.ok THEN 1 ELSE 0 END, error = o.error, sent_at = $5
             FROM unnest($2::text[], $3::bool[], $4::text[]) AS o(device_id, ok, error)
             WHERE d.campaign_id = $1 AND d.device_id = o.device_id AND d.status = -1
             RETURNING o.ok",
            &[&campaign_id, &devices, &ok, &errors, &now_ms],
        )?;
        let sent = changed
            .iter()
            .map(|r| get::<bool>(r, 0))
            .collect::<RepoResult<Vec<bool>>>()?
            .into_iter()
            .filter(|ok| *ok)
            .count() as i64;
        let failed = changed.len() as i64 - sent;
        if !changed.is_empty() {
            self.exec(
                "UPDATE campaign SET pending = pending - $2 - $3, sent = sent + $2,
                    failed = failed + $3 WHERE id = $1",
                &[&campaign_id, &sent, &failed],
            )?;
        }
        Ok(sent as u64)
    }

    fn advance_campaign(
        &mut self,
        id: &str,
        step: &CampaignStep<'_>,
        now_ms: i64,
    ) -> RepoResult<()> {
        let finished = (step.state == CampaignState::Done).then_some(now_ms);
        self.exec(
            "UPDATE campaign SET cursor = $2, targeted = targeted + $3,
                without_device = without_device + $4, pending = pending + $5, state = $6,
                finished_at = coalesce($7, finished_at)
             WHERE id = $1",
            &[
                &id,
                &step.cursor,
                &to_i64(step.members),
                &to_i64(step.without_device),
                &to_i64(step.pending),
                &step.state.as_str(),
                &finished,
            ],
        )?;
        Ok(())
    }

    fn delivered(
        &mut self,
        campaign_id: &str,
        device_id: &str,
        outcome: Result<(), &str>,
        now_ms: i64,
    ) -> RepoResult<bool> {
        let changed = self.exec(
            "UPDATE push_delivery SET status = $3, error = $4, sent_at = $5
             WHERE campaign_id = $1 AND device_id = $2 AND status = -1",
            &[
                &campaign_id,
                &device_id,
                &i64::from(outcome.is_ok()),
                &outcome.err(),
                &now_ms,
            ],
        )? == 1;
        if changed {
            self.exec(
                "UPDATE campaign SET pending = pending - 1, sent = sent + $2,
                    failed = failed + $3 WHERE id = $1",
                &[
                    &campaign_id,
                    &i64::from(outcome.is_ok()),
                    &i64::from(outcome.is_err()),
                ],
            )?;
        }
        Ok(changed)
    }
}

fn job_row(r: &Row) -> RepoResult<JobRow> {
    let attempts: i64 = get(r, 3)?;
    Ok(JobRow {
        id: get(r, 0)?,
        kind: get(r, 1)?,
        subject: get(r, 2)?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
    })
}

impl Jobs for PgRepo<'_, '_> {
    fn insert_job(
        &mut self,
        kind: &str,
        subject: &str,
        run_after_ms: i64,
        now_ms: i64,
    ) -> RepoResult<bool> {
        Ok(self.exec(
            "INSERT INTO job (kind, subject, state, run_after, created_at, updated_at)
             VALUES ($1, $2, 'queued', $3, $4, $4) ON CONFLICT (kind, subject) DO NOTHING",
            &[&kind, &subject, &run_after_ms, &now_ms],
        )? == 1)
    }

    fn claim_job(&mut self, owner: &str, now_ms: i64, lease_ms: i64) -> RepoResult<Option<JobRow>> {
        // SKIP LOCKED: workers of other processes claiming at the same moment take the next job
        // instead of waiting for this one.
        self.opt(
            "UPDATE job SET state = 'running', lease_owner = $1, lease_until = $2::bigint + $3::bigint,
                attempts = attempts + 1, updated_at = $2
             WHERE id = (SELECT id FROM job
                         WHERE (state = 'queued' AND run_after <= $2)
                            OR (state = 'running' AND lease_until < $2)
                         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING id, kind, subject, attempts",
            &[&owner, &now_ms, &lease_ms],
        )?
        .as_ref()
        .map(job_row)
        .transpose()
    }

    fn renew_job(&mut self, id: i64, owner: &str, now_ms: i64, lease_ms: i64) -> RepoResult<bool> {
        Ok(self.exec(
            "UPDATE job SET lease_until = $3::bigint + $4::bigint, updated_at = $3
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            &[&id, &owner, &now_ms, &lease_ms],
        )? == 1)
    }

    fn finish_job(
        &mut self,
        id: i64,
        owner: &str,
        error: Option<&str>,
        now_ms: i64,
    ) -> RepoResult<()> {
        self.exec(
            "UPDATE job SET state = CASE WHEN $3::text IS NULL THEN 'done' ELSE 'failed' END,
                error = $3, lease_owner = NULL, lease_until = NULL, updated_at = $4
             WHERE id = $1 AND lease_owner = $2",
            &[&id, &owner, &error, &now_ms],
        )?;
        Ok(())
    }

    fn release_job(&mut self, id: i64, owner: &str, now_ms: i64) -> RepoResult<()> {
        self.exec(
            "UPDATE job SET state = 'queued', run_after = $3, lease_owner = NULL,
                lease_until = NULL, updated_at = $3
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            &[&id, &owner, &now_ms],
        )?;
        Ok(())
    }

    fn heartbeat(&mut self, process: &str, now_ms: i64) -> RepoResult<()> {
        self.exec(
            "INSERT INTO server_process (id, started_at, seen_at) VALUES ($1, $2, $2)
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
            &[&process, &now_ms],
        )?;
        Ok(())
    }

    fn forget_processes(&mut self, before_ms: i64) -> RepoResult<()> {
        self.exec(
            "DELETE FROM server_process WHERE seen_at < $1",
            &[&before_ms],
        )?;
        Ok(())
    }

    fn live_processes(&mut self, since_ms: i64) -> RepoResult<u32> {
        let n = self
            .value::<i64>(
                "SELECT count(*) FROM server_process WHERE seen_at >= $1",
                &[&since_ms],
            )?
            .unwrap_or(0);
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn job_state(&mut self, kind: &str, subject: &str) -> RepoResult<Option<String>> {
        self.value(
            "SELECT state FROM job WHERE kind = $1 AND subject = $2",
            &[&kind, &subject],
        )
    }

    fn leave(&mut self, process: &str) -> RepoResult<()> {
        self.exec("DELETE FROM server_process WHERE id = $1", &[&process])?;
        Ok(())
    }
}

impl crate::storage::repo::Certificates for PgRepo<'_, '_> {
    fn insert_certificate(
        &mut self,
        c: &crate::storage::repo::NewCertificate<'_>,
    ) -> RepoResult<()> {
        self.exec(
            "INSERT INTO device_certificate (serial, member_id, device_id, public_key, issued_at,
               not_after) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &c.serial,
                &c.member_id,
                &c.device_id,
                &c.public_key,
                &c.issued_ms,
                &c.not_after_ms,
            ],
        )?;
        Ok(())
    }

    fn revoke_certificates(
        &mut self,
        member_id: &str,
        device_id: Option<&str>,
        now_ms: i64,
    ) -> RepoResult<u64> {
        self.exec(
            "UPDATE device_certificate SET revoked_at = $3
             WHERE member_id = $1 AND ($2::text IS NULL OR device_id = $2)
               AND revoked_at IS NULL AND not_after > $3",
            &[&member_id, &device_id, &now_ms],
        )
    }

    fn revoked_serials(&mut self, now_ms: i64) -> RepoResult<Vec<i64>> {
        self.rows(
            "SELECT serial FROM device_certificate
             WHERE revoked_at IS NOT NULL AND not_after > $1 ORDER BY serial",
            &[&now_ms],
        )?
        .iter()
        .map(|r| get(r, 0))
        .collect()
    }

    fn certificate_revoked_at(&mut self, serial: i64) -> RepoResult<Option<Option<i64>>> {
        self.opt(
            "SELECT revoked_at FROM device_certificate WHERE serial = $1",
            &[&serial],
        )?
        .map(|r| get(&r, 0))
        .transpose()
    }
}

const PASS: &str = "SELECT serial, member_id, coupon_id, auth_token, shops, digest, pushed_digest,
    updated_at, stale, google FROM wallet_pass";

fn pass_row(r: &Row) -> RepoResult<PassRow> {
    Ok(PassRow {
        serial: get(r, 0)?,
        member_id: get(r, 1)?,
        coupon_id: get(r, 2)?,
        auth_token: get(r, 3)?,
        shops: get(r, 4)?,
        digest: get(r, 5)?,
        pushed_digest: get(r, 6)?,
        updated_ms: get(r, 7)?,
        stale: get(r, 8)?,
        google: get::<i64>(r, 9)? != 0,
    })
}

impl PgRepo<'_, '_> {
    /// The member's state changed: their wallet passes must be looked at again.
    fn stale_passes_of(&mut self, member_id: &str) -> RepoResult<()> {
        self.exec(
            "UPDATE wallet_pass SET stale = stale + 1 WHERE member_id = $1",
            &[&member_id],
        )?;
        Ok(())
    }
}

impl Wallets for PgRepo<'_, '_> {
    fn wallet_pass(&mut self, serial: &str) -> RepoResult<Option<PassRow>> {
        self.opt(&format!("{PASS} WHERE serial = $1"), &[&serial])?
            .map(|r| pass_row(&r))
            .transpose()
    }

    fn insert_wallet_pass(&mut self, p: &PassRow) -> RepoResult<bool> {
        let google = i64::from(p.google);
        Ok(self.exec(
            "INSERT INTO wallet_pass (serial, member_id, coupon_id, auth_token, shops, digest,
                pushed_digest, updated_at, stale, google)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (serial) DO NOTHING",
            &[
                &p.serial,
                &p.member_id,
                &p.coupon_id,
                &p.auth_token,
                &p.shops,
                &p.digest,
                &p.pushed_digest,
                &p.updated_ms,
                &p.stale,
                &google,
            ],
        )? == 1)
    }

    fn pass_changed(&mut self, serial: &str, digest: &str, now_ms: i64) -> RepoResult<()> {
        self.exec(
            "UPDATE wallet_pass SET digest = $2, updated_at = GREATEST($3, updated_at + 1)
             WHERE serial = $1",
            &[&serial, &digest, &now_ms],
        )?;
        Ok(())
    }

    fn pass_offered_to_google(&mut self, serial: &str) -> RepoResult<()> {
        self.exec(
            "UPDATE wallet_pass SET google = 1 WHERE serial = $1",
            &[&serial],
        )?;
        Ok(())
    }

    fn pass_pushed(&mut self, serial: &str, digest: &str, stale: i64) -> RepoResult<()> {
        self.exec(
            "UPDATE wallet_pass SET pushed_digest = $2,
                stale = CASE WHEN stale = $3 THEN 0 ELSE stale END
             WHERE serial = $1",
            &[&serial, &digest, &stale],
        )?;
        Ok(())
    }

    fn stale_passes(&mut self, after: &str, limit: u32) -> RepoResult<Vec<(String, i64)>> {
        let limit = i64::from(limit);
        self.rows(
            "SELECT serial, stale FROM wallet_pass WHERE stale > 0 AND serial > $1
             ORDER BY serial LIMIT $2",
            &[&after, &limit],
        )?
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
        .collect()
    }

    fn register_pass(
        &mut self,
        device_id: &str,
        serial: &str,
        push_token: &str,
        now_ms: i64,
    ) -> RepoResult<bool> {
        let before: Option<String> = self.value(
            "SELECT push_token FROM wallet_registration WHERE device_id = $1 AND serial = $2",
            &[&device_id, &serial],
        )?;
        self.exec(
            "INSERT INTO wallet_registration (device_id, serial, push_token, registered_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (device_id, serial) DO UPDATE SET push_token = excluded.push_token",
            &[&device_id, &serial, &push_token, &now_ms],
        )?;
        Ok(before.is_none())
    }

    fn unregister_pass(&mut self, device_id: &str, serial: &str) -> RepoResult<bool> {
        Ok(self.exec(
            "DELETE FROM wallet_registration WHERE device_id = $1 AND serial = $2",
            &[&device_id, &serial],
        )? == 1)
    }

    fn device_passes(&mut self, device_id: &str, since_ms: i64) -> RepoResult<Vec<(String, i64)>> {
        self.rows(
            "SELECT p.serial, p.updated_at FROM wallet_registration r
             JOIN wallet_pass p ON p.serial = r.serial
             WHERE r.device_id = $1 AND p.updated_at > $2 ORDER BY p.serial",
            &[&device_id, &since_ms],
        )?
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
        .collect()
    }

    fn pass_push_tokens(&mut self, serial: &str) -> RepoResult<Vec<String>> {
        self.rows(
            "SELECT DISTINCT push_token FROM wallet_registration WHERE serial = $1
             ORDER BY push_token",
            &[&serial],
        )?
        .iter()
        .map(|r| get(r, 0))
        .collect()
    }

    fn forget_pass_push_token(&mut self, push_token: &str) -> RepoResult<u64> {
        self.exec(
            "DELETE FROM wallet_registration WHERE push_token = $1",
            &[&push_token],
        )
    }

    fn delete_member_passes(&mut self, member_id: &str) -> RepoResult<u64> {
        self.exec(
            "DELETE FROM wallet_registration WHERE serial IN
                (SELECT serial FROM wallet_pass WHERE member_id = $1)",
            &[&member_id],
        )?;
        self.exec(
            "DELETE FROM wallet_pass WHERE member_id = $1",
            &[&member_id],
        )
    }

    fn mark_passes_stale(&mut self, member_id: &str) -> RepoResult<()> {
        self.stale_passes_of(member_id)
    }

    fn member_passes(&mut self, member_id: &str) -> RepoResult<Vec<PassRow>> {
        self.rows(
            &format!("{PASS} WHERE member_id = $1 ORDER BY serial"),
            &[&member_id],
        )?
        .iter()
        .map(pass_row)
        .collect()
    }

    fn catalog_program(&mut self) -> RepoResult<Option<tessera_domain::card::Program>> {
        let data: Option<String> = self.value(
            "SELECT data FROM catalog_entity WHERE kind = 'program' AND data IS NOT NULL",
            &[],
        )?;
        data.map(|d| serde_json::from_str(&d).map_err(StorageError::backend))
            .transpose()
    }

    fn catalog_stores(&mut self) -> RepoResult<Vec<tessera_domain::catalog::Store>> {
        self.rows(
            "SELECT data FROM catalog_entity WHERE kind = 'store' AND data IS NOT NULL
             ORDER BY id",
            &[],
        )?
        .iter()
        .map(|r| {
            let d: String = get(r, 0)?;
            serde_json::from_str(&d).map_err(StorageError::backend)
        })
        .collect()
    }
}
