//! Analytics' settings, report and members' scores in PostgreSQL (the same statements as
//! SQLite's `storage/sqlite/repo/analytics.rs`; scores written a batch per statement).

use postgres::fallible_iterator::FallibleIterator;
use tessera_analytics::{History, Sale};
use tessera_domain::api::{AnalyticsReport, AnalyticsSettings, MemberScore, day_of};

use super::repo::PgRepo;
use crate::storage::StorageError;
use crate::storage::repo::{Analytics, RepoResult, segments_of};

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> RepoResult<T> {
    serde_json::from_str(s).map_err(StorageError::backend)
}

fn json<T: serde::Serialize>(v: &T) -> RepoResult<String> {
    serde_json::to_string(v).map_err(StorageError::backend)
}

fn column(e: postgres::Error) -> StorageError {
    StorageError::backend(format!("reading a column: {e}"))
}

impl Analytics for PgRepo<'_, '_> {
    fn purchase_histories(&mut self, before_ms: i64) -> RepoResult<Vec<History>> {
        // Streamed: a programme's year of receipts is millions of rows.
        let sql = "SELECT m.id, m.created_at, p.occurred_at, p.total_cents - p.returned_cents,
                p.points
             FROM member m LEFT JOIN purchase p ON p.member_id = m.id AND p.voided_at IS NULL
                 AND p.occurred_at < $1 AND p.total_cents > p.returned_cents
             WHERE m.created_at < $1
             ORDER BY m.id, p.occurred_at";
        let mut rows = match self.tx.query_raw(sql, [&before_ms]) {
            Ok(rows) => rows,
            Err(e) => return Err(super::repo::storage_error(&e)),
        };
        let mut out: Vec<History> = vec![];
        loop {
            let r = match rows.next() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => return Err(super::repo::storage_error(&e)),
            };
            let id: String = r.try_get(0).map_err(column)?;
            let sale = match r.try_get::<_, Option<i64>>(2).map_err(column)? {
                Some(at) => Some(Sale {
                    day: day_of(at),
                    net_cents: r.try_get(3).map_err(column)?,
                    points: r.try_get(4).map_err(column)?,
                }),
                None => None,
            };
            match out.last_mut() {
                Some(h) if h.member_id == id => h.sales.extend(sale),
                _ => out.push(History {
                    member_id: id,
                    enrolled_day: day_of(r.try_get(1).map_err(column)?),
                    sales: sale.into_iter().collect(),
                }),
            }
        }
        Ok(out)
    }

    fn analytics_settings(&mut self) -> RepoResult<Option<AnalyticsSettings>> {
        self.value::<String>("SELECT data FROM analytics_settings WHERE id = 1", &[])?
            .map(|d| parse(&d))
            .transpose()
    }

    fn put_analytics_settings(&mut self, s: &AnalyticsSettings, now_ms: i64) -> RepoResult<()> {
        self.exec(
            "INSERT INTO analytics_settings (id, data, updated_at) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET data = excluded.data,
                 updated_at = excluded.updated_at",
            &[&json(s)?, &now_ms],
        )?;
        Ok(())
    }

    fn insert_scores(&mut self, generation: i64, scores: &[MemberScore]) -> RepoResult<()> {
        let ids: Vec<&str> = scores.iter().map(|s| s.member_id.as_str()).collect();
        let data = scores.iter().map(json).collect::<RepoResult<Vec<_>>>()?;
        let written: std::collections::HashSet<String> = self
            .rows(
                "INSERT INTO member_score (generation, member_id, data)
                 SELECT $1, u.id, u.data
                 FROM unnest($2::text[], $3::text[]) AS u (id, data)
                 WHERE EXISTS (SELECT 1 FROM member m WHERE m.id = u.id)
                 RETURNING member_id",
                &[&generation, &ids, &data],
            )?
            .iter()
            .map(|r| r.try_get(0).map_err(column))
            .collect::<RepoResult<_>>()?;
        let (mut segments, mut members) = (vec![], vec![]);
        for s in scores.iter().filter(|s| written.contains(&s.member_id)) {
            for name in segments_of(s) {
                segments.push(name);
                members.push(s.member_id.as_str());
            }
        }
        self.exec(
            "INSERT INTO member_segment (generation, segment, member_id)
             SELECT $1, u.segment, u.member_id
             FROM unnest($2::text[], $3::text[]) AS u (segment, member_id)",
            &[&generation, &segments, &members],
        )?;
        Ok(())
    }

    fn publish_analysis(
        &mut self,
        generation: i64,
        report: &AnalyticsReport,
        now_ms: i64,
    ) -> RepoResult<bool> {
        Ok(self.exec(
            "INSERT INTO analytics_report (id, generation, data, computed_at)
             VALUES (1, $1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET generation = excluded.generation,
                 data = excluded.data, computed_at = excluded.computed_at
             WHERE analytics_report.generation < excluded.generation",
            &[&generation, &json(report)?, &now_ms],
        )? == 1)
    }

    fn clear_generation(&mut self, generation: i64, limit: u32) -> RepoResult<u64> {
        let limit = i64::from(limit);
        let mut n = 0;
        for table in ["member_score", "member_segment"] {
            n += self.exec(
                &format!(
                    "DELETE FROM {table} WHERE ctid = ANY (ARRAY (SELECT ctid FROM {table}
                     WHERE generation = $1 LIMIT $2))"
                ),
                &[&generation, &limit],
            )?;
        }
        Ok(n)
    }

    fn drop_old_scores(&mut self, limit: u32) -> RepoResult<u64> {
        let limit = i64::from(limit);
        let scores = self.exec(
            "DELETE FROM member_score WHERE ctid = ANY (ARRAY (SELECT ctid FROM member_score
             WHERE generation < (SELECT generation FROM analytics_report WHERE id = 1)
             LIMIT $1))",
            &[&limit],
        )?;
        let segments = self.exec(
            "DELETE FROM member_segment WHERE ctid = ANY (ARRAY (SELECT ctid FROM member_segment
             WHERE generation < (SELECT generation FROM analytics_report WHERE id = 1)
             LIMIT $1))",
            &[&limit],
        )?;
        Ok(scores + segments)
    }

    fn analytics_report(&mut self) -> RepoResult<Option<AnalyticsReport>> {
        self.value::<String>("SELECT data FROM analytics_report WHERE id = 1", &[])?
            .map(|d| parse(&d))
            .transpose()
    }

    fn member_score(&mut self, member_id: &str) -> RepoResult<Option<MemberScore>> {
        self.value::<String>(
            "SELECT s.data FROM member_score s JOIN analytics_report a
                 ON a.id = 1 AND s.generation = a.generation
             WHERE s.member_id = $1",
            &[&member_id],
        )?
        .map(|d| parse(&d))
        .transpose()
    }

    fn member_in_segments(&mut self, member_id: &str, segments: &[String]) -> RepoResult<bool> {
        Ok(self
            .value::<bool>(
                "SELECT EXISTS (SELECT 1 FROM member_segment s JOIN analytics_report a
                     ON a.id = 1 AND s.generation = a.generation
                 WHERE s.member_id = $1 AND s.segment = ANY ($2))",
                &[&member_id, &segments],
            )?
            .unwrap_or(false))
    }

    fn segment_members(&mut self, segment: &str) -> RepoResult<Vec<String>> {
        self.rows(
            "SELECT s.member_id FROM member_segment s JOIN analytics_report a
                 ON a.id = 1 AND s.generation = a.generation
             WHERE s.segment = $1 ORDER BY s.member_id",
            &[&segment],
        )?
        .iter()
        .map(|r| r.try_get(0).map_err(column))
        .collect()
    }
}
