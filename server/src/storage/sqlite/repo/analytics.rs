//! Analytics' settings, report and members' scores in SQLite (issue #19; the same statements in
//! PostgreSQL's `storage/postgres/analytics.rs`).

use rusqlite::{OptionalExtension, params};
use tessera_analytics::{History, Sale};
use tessera_domain::api::{AnalyticsReport, AnalyticsSettings, MemberScore, day_of};

use super::{SqliteRepo, json};
use crate::storage::StorageError;
use crate::storage::repo::{Analytics, RepoResult, segments_of};

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> RepoResult<T> {
    serde_json::from_str(s).map_err(StorageError::backend)
}

impl Analytics for SqliteRepo<'_> {
    fn purchase_histories(&mut self, before_ms: i64) -> RepoResult<Vec<History>> {
        let mut statement = self.c.prepare_cached(
            "SELECT m.id, m.created_at, p.occurred_at, p.total_cents - p.returned_cents, p.points
             FROM member m LEFT JOIN purchase p ON p.member_id = m.id AND p.voided_at IS NULL
                 AND p.occurred_at < ?1 AND p.total_cents > p.returned_cents
             WHERE m.created_at < ?1
             ORDER BY m.id, p.occurred_at",
        )?;
        let mut rows = statement.query([before_ms])?;
        let mut out: Vec<History> = vec![];
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let sale = match r.get::<_, Option<i64>>(2)? {
                Some(at) => Some(Sale {
                    day: day_of(at),
                    net_cents: r.get(3)?,
                    points: r.get(4)?,
                }),
                None => None,
            };
            match out.last_mut() {
                Some(h) if h.member_id == id => h.sales.extend(sale),
                _ => out.push(History {
                    member_id: id,
                    enrolled_day: day_of(r.get(1)?),
                    sales: sale.into_iter().collect(),
                }),
            }
        }
        Ok(out)
    }

    fn analytics_settings(&mut self) -> RepoResult<Option<AnalyticsSettings>> {
        self.c
            .prepare_cached("SELECT data FROM analytics_settings WHERE id = 1")?
            .query_row([], |r| r.get::<_, String>(0))
            .optional()?
            .map(|d| parse(&d))
            .transpose()
    }

    fn put_analytics_settings(&mut self, s: &AnalyticsSettings, now_ms: i64) -> RepoResult<()> {
        self.c
            .prepare_cached(
                "INSERT INTO analytics_settings (id, data, updated_at) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data,
                     updated_at = excluded.updated_at",
            )?
            .execute(params![json(s)?, now_ms])?;
        Ok(())
    }

    fn insert_scores(&mut self, generation: i64, scores: &[MemberScore]) -> RepoResult<()> {
        let mut score = self.c.prepare_cached(
            "INSERT INTO member_score (generation, member_id, data)
             SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM member WHERE id = ?2)",
        )?;
        let mut segment = self.c.prepare_cached(
            "INSERT INTO member_segment (generation, segment, member_id) VALUES (?1, ?2, ?3)",
        )?;
        for s in scores {
            if score.execute(params![generation, s.member_id, json(s)?])? == 0 {
                continue;
            }
            for name in segments_of(s) {
                segment.execute(params![generation, name, s.member_id])?;
            }
        }
        Ok(())
    }

    fn publish_analysis(
        &mut self,
        generation: i64,
        report: &AnalyticsReport,
        now_ms: i64,
    ) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "INSERT INTO analytics_report (id, generation, data, computed_at)
                 VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET generation = excluded.generation,
                     data = excluded.data, computed_at = excluded.computed_at
                 WHERE analytics_report.generation < excluded.generation",
            )?
            .execute(params![generation, json(report)?, now_ms])?
            == 1)
    }

    fn clear_generation(&mut self, generation: i64, limit: u32) -> RepoResult<u64> {
        let mut n = 0;
        for table in ["member_score", "member_segment"] {
            n += self
                .c
                .prepare_cached(&format!(
                    "DELETE FROM {table} WHERE rowid IN
                     (SELECT rowid FROM {table} WHERE generation = ?1 LIMIT ?2)"
                ))?
                .execute(params![generation, limit])?;
        }
        Ok(n as u64)
    }

    fn drop_old_scores(&mut self, limit: u32) -> RepoResult<u64> {
        let scores = self
            .c
            .prepare_cached(
                "DELETE FROM member_score WHERE rowid IN (SELECT rowid FROM member_score
                 WHERE generation < (SELECT generation FROM analytics_report WHERE id = 1)
                 LIMIT ?1)",
            )?
            .execute([limit])?;
        let segments = self
            .c
            .prepare_cached(
                "DELETE FROM member_segment WHERE rowid IN (SELECT rowid FROM member_segment
                 WHERE generation < (SELECT generation FROM analytics_report WHERE id = 1)
                 LIMIT ?1)",
            )?
            .execute([limit])?;
        Ok((scores + segments) as u64)
    }

    fn analytics_report(&mut self) -> RepoResult<Option<AnalyticsReport>> {
        self.c
            .prepare_cached("SELECT data FROM analytics_report WHERE id = 1")?
            .query_row([], |r| r.get::<_, String>(0))
            .optional()?
            .map(|d| parse(&d))
            .transpose()
    }

    fn member_score(&mut self, member_id: &str) -> RepoResult<Option<MemberScore>> {
        self.c
            .prepare_cached(
                "SELECT s.data FROM member_score s JOIN analytics_report a
                     ON a.id = 1 AND s.generation = a.generation
                 WHERE s.member_id = ?1",
            )?
            .query_row([member_id], |r| r.get::<_, String>(0))
            .optional()?
            .map(|d| parse(&d))
            .transpose()
    }

    fn member_in_segments(&mut self, member_id: &str, segments: &[String]) -> RepoResult<bool> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM member_segment s JOIN analytics_report a
                     ON a.id = 1 AND s.generation = a.generation
                 WHERE s.member_id = ?1 AND s.segment IN (SELECT value FROM json_each(?2)))",
            )?
            .query_row(params![member_id, json(&segments)?], |r| r.get(0))?)
    }

    fn segment_members(&mut self, segment: &str) -> RepoResult<Vec<String>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT s.member_id FROM member_segment s JOIN analytics_report a
                     ON a.id = 1 AND s.generation = a.generation
                 WHERE s.segment = ?1 ORDER BY s.member_id",
            )?
            .query_map([segment], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }
}
