//! The programme's analytics (issue #19): the operator's settings, and a run that reads every
//! member's purchases in one snapshot, computes the report and the scores
//! (`tessera_analytics::analyse`, on a blocking thread: about a second per 100,000 members),
//! writes the scores a batch per transaction under its own generation, publishes, and deletes
//! the generation before. See docs/analytics.md and docs/adr/0029.

use async_trait::async_trait;
use tessera_domain::api::{AnalyticsReport, AnalyticsSettings, MemberScore, day_of};

use crate::storage::{Storage, StorageError, read, write};

/// The job kind that runs the analysis (its subject: the day for the daily run, `now-<ms>` for
/// one asked for). Its job's id is the run's generation.
pub const ANALYTICS_JOB: &str = "analytics";

/// Scores written per transaction.
pub const SCORE_BATCH: usize = 2_000;

#[async_trait]
pub trait AnalyticsServices {
    /// The settings in force (the defaults until the operator sets them).
    async fn analytics_settings(&self) -> Result<AnalyticsSettings, StorageError>;
    async fn put_analytics_settings(
        &self,
        settings: AnalyticsSettings,
        now_ms: i64,
    ) -> Result<(), StorageError>;
    /// The published report, if a run has ended.
    async fn analytics_report(&self) -> Result<Option<AnalyticsReport>, StorageError>;
    async fn member_score(&self, member_id: String) -> Result<Option<MemberScore>, StorageError>;
    /// Members of a named segment or an RFM class (`rfm:<class>`).
    async fn segment_members(&self, segment: String) -> Result<Vec<String>, StorageError>;
    /// Analyse the programme with every sale of the day of `now_ms` and before (the analysis is
    /// as of the next day: a run asked for at noon counts this morning's sales and members), and
    /// publish it as `generation` (false: a later run published first).
    async fn run_analysis(&self, generation: i64, now_ms: i64) -> Result<bool, StorageError>;
}

#[async_trait]
impl<S: Storage + ?Sized> AnalyticsServices for S {
    async fn analytics_settings(&self) -> Result<AnalyticsSettings, StorageError> {
        read(self, |repo| {
            Ok(repo.analytics_settings()?.unwrap_or_default())
        })
        .await
    }

    async fn put_analytics_settings(
        &self,
        settings: AnalyticsSettings,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        write(self, move |repo| {
            repo.put_analytics_settings(&settings, now_ms)
        })
        .await
    }

    async fn analytics_report(&self) -> Result<Option<AnalyticsReport>, StorageError> {
        read(self, |repo| repo.analytics_report()).await
    }

    async fn member_score(&self, member_id: String) -> Result<Option<MemberScore>, StorageError> {
        read(self, move |repo| repo.member_score(&member_id)).await
    }

    async fn segment_members(&self, segment: String) -> Result<Vec<String>, StorageError> {
        read(self, move |repo| repo.segment_members(&segment)).await
    }

    async fn run_analysis(&self, generation: i64, now_ms: i64) -> Result<bool, StorageError> {
        let as_of = day_of(now_ms) + 1;
        let (histories, settings) = read(self, move |repo| {
            Ok((
                repo.purchase_histories(as_of * 86_400_000)?,
                repo.analytics_settings()?.unwrap_or_default(),
            ))
        })
        .await?;
        let computed_at = tessera_domain::rfc3339_ms(now_ms);
        let analysis = tokio::task::spawn_blocking(move || {
            tessera_analytics::analyse(&histories, &settings, as_of, computed_at)
        })
        .await
        .map_err(|e| StorageError::backend(format!("the analysis failed: {e}")))?;
        // What an earlier attempt of this run wrote.
        while write(self, move |repo| repo.clear_generation(generation, 10_000)).await? > 0 {}
        let scores = std::sync::Arc::new(analysis.scores);
        for start in (0..scores.len()).step_by(SCORE_BATCH) {
            let scores = scores.clone();
            write(self, move |repo| {
                let end = (start + SCORE_BATCH).min(scores.len());
                repo.insert_scores(generation, &scores[start..end])
            })
            .await?;
        }
        let report = analysis.report;
        let published = write(self, move |repo| {
            repo.publish_analysis(generation, &report, now_ms)
        })
        .await?;
        while write(self, |repo| repo.drop_old_scores(10_000)).await? > 0 {}
        Ok(published)
    }
}
