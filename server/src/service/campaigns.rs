//! Push campaigns: who a campaign reaches, and its sending in batches by the job queue. Only
//! members whose latest decision for offers by push is a grant, matching the audience (tiers,
//! segments, interests, shops, the latest analysis' segments and RFM classes), on the devices
//! with a token; each device at most once.

use tessera_domain::api::{Campaign, CampaignAudience, CampaignReport, CampaignState};
use tessera_domain::consent::{Channel, Purpose};

use std::collections::HashSet;

use super::privacy;
use crate::storage::repo::{CampaignRow, CampaignStep, RepoResult};
use crate::storage::{AudienceCount, CampaignTargets, PushTarget, Repo, StorageError};

/// The job kind that sends a campaign (its subject: the campaign's id).
pub const CAMPAIGN_JOB: &str = "campaign";

/// Whether the member fits the audience (consent is checked by who is read); false if there is
/// no such member. Reads only what the audience asks about.
fn fits(repo: &mut dyn Repo, member_id: &str, audience: &CampaignAudience) -> RepoResult<bool> {
    if !audience.analytics_segments.is_empty()
        && !repo.member_in_segments(member_id, &audience.analytics_segments)?
    {
        return Ok(false);
    }
    if !audience.shops.is_empty() && !repo.in_shops(member_id, &audience.shops)? {
        return Ok(false);
    }
    if !audience.tiers.is_empty() || !audience.segments.is_empty() {
        let Some(member) = repo.member(member_id)? else {
            return Ok(false);
        };
        let tier = audience.tiers.is_empty() || audience.tiers.contains(&member.tier);
        let segment = audience.segments.is_empty()
            || audience
                .segments
                .iter()
                .any(|s| member.segments.contains(s));
        if !(tier && segment) {
            return Ok(false);
        }
    }
    if audience.categories.is_empty() {
        return Ok(true);
    }
    let interests = privacy::preferences(repo, member_id)?.interests;
    Ok(interested(&interests, &audience.categories))
}

/// A member who declared `interests` is in an audience of `wanted` interests (not empty): they
/// declared none, or one of them.
fn interested(interests: &[String], wanted: &[String]) -> bool {
    interests.is_empty() || wanted.iter().any(|k| interests.contains(k))
}

/// How many a campaign to `audience` would reach now (the operator's count, asked again as the
/// audience is built; sending goes batch by batch: [`next_batch`]). What one statement can
/// answer for the whole programme is read once: the consenting members, the shops', the
/// tiers' and the analysis' segments' members, declared interests, the devices; only the
/// operator's segments are read per member.
pub(crate) fn count(repo: &mut dyn Repo, audience: &CampaignAudience) -> RepoResult<AudienceCount> {
    let shops = match audience.shops.as_slice() {
        [] => None,
        shops => Some(repo.shops_members(shops)?),
    };
    let segments = if audience.analytics_segments.is_empty() {
        None
    } else {
        let mut members = HashSet::new();
        for segment in &audience.analytics_segments {
            members.extend(repo.segment_members(segment)?);
        }
        Some(members)
    };
    let interests = if audience.categories.is_empty() {
        None
    } else {
        Some(privacy::declared_interests(repo)?)
    };
    let tiers = match audience.tiers.as_slice() {
        [] => None,
        tiers => Some(repo.tier_members(tiers)?),
    };
    let rest = CampaignAudience {
        shops: Vec::new(),
        analytics_segments: Vec::new(),
        tiers: Vec::new(),
        categories: Vec::new(),
        ..audience.clone()
    };
    let devices = repo.push_device_counts()?;
    let mut count = AudienceCount::default();
    for member_id in repo.audience(Purpose::MarketingOffers, Channel::Push)? {
        let outside =
            |set: &Option<HashSet<String>>| set.as_ref().is_some_and(|s| !s.contains(&member_id));
        if outside(&shops)
            || outside(&segments)
            || outside(&tiers)
            || interests.as_ref().is_some_and(|declared| {
                declared
                    .get(&member_id)
                    .is_some_and(|mine| !interested(mine, &audience.categories))
            })
            || !fits(repo, &member_id, &rest)?
        {
            continue;
        }
        count.members += 1;
        match devices.get(&member_id) {
            Some(n) => count.devices += n,
            None => count.without_device += 1,
        }
    }
    Ok(count)
}

fn add_devices(
    member_id: &str,
    devices: Vec<(String, tessera_domain::api::PushProvider, String)>,
    targets: &mut CampaignTargets,
) {
    targets.members += 1;
    if devices.is_empty() {
        targets.without_device += 1;
    }
    for (device_id, provider, token) in devices {
        targets.devices.push(PushTarget {
            member_id: member_id.to_owned(),
            device_id,
            provider,
            token,
        });
    }
}

/// A new campaign (`body`: the operator's JSON) and the job that sends it from `send_at_ms`:
/// false if the id is taken (nothing queued).
pub(crate) fn create(
    repo: &mut dyn Repo,
    id: &str,
    body: &str,
    send_at_ms: i64,
    now_ms: i64,
) -> RepoResult<bool> {
    if !repo.insert_campaign(id, body, now_ms)? {
        return Ok(false);
    }
    repo.insert_job(CAMPAIGN_JOB, id, send_at_ms.max(now_ms), now_ms)?;
    Ok(true)
}

/// The latest `limit` campaigns as sent (those whose body no longer parses are left out) and
/// where each is.
pub(crate) fn recent(
    repo: &mut dyn Repo,
    limit: u32,
) -> RepoResult<Vec<(Campaign, CampaignReport)>> {
    let mut out = vec![];
    for id in repo.campaign_ids(limit)? {
        if let Some(row) = repo.campaign(&id)?
            && let Ok(c) = serde_json::from_str::<Campaign>(&row.body)
        {
            out.push((c, report(&row)));
        }
    }
    Ok(out)
}

pub(crate) fn report(row: &CampaignRow) -> CampaignReport {
    let finished = row.state == CampaignState::Done;
    CampaignReport {
        campaign_id: row.id.clone(),
        state: row.state,
        members: row.members,
        without_device: row.without_device,
        sent: row.sent,
        failed: row.failed,
        // While a batch is being sent its deliveries are pending; once the campaign is done, a
        // pending one was handed over by a process that stopped before it learnt the outcome.
        unknown: if finished { row.pending } else { 0 },
    }
}

/// A batch to send.
#[derive(Debug, Clone)]
pub struct Batch {
    pub campaign: Campaign,
    /// The devices written as pending in this batch: send each once, then record its outcome.
    pub targets: Vec<PushTarget>,
    /// The campaign is done: nothing more to send.
    pub done: bool,
}

/// The campaign's next batch, for the worker holding job `job_id` as `owner`: the next
/// `members` members after the cursor, those of the audience among them; their devices are written as pending and
/// the cursor moves past them in this transaction, so that a batch is never sent twice, even if
/// the process stops right after. `None` if the job is no longer the worker's (its lease ran out
/// and another took it).
#[allow(clippy::too_many_arguments)]
pub(crate) fn next_batch(
    repo: &mut dyn Repo,
    job_id: i64,
    owner: &str,
    lease_ms: i64,
    campaign_id: &str,
    members: u32,
    now_ms: i64,
) -> RepoResult<Option<Batch>> {
    if !repo.renew_job(job_id, owner, now_ms, lease_ms)? {
        return Ok(None);
    }
    let Some(row) = repo.campaign(campaign_id)? else {
        return Err(StorageError::NotFound);
    };
    let campaign: Campaign = serde_json::from_str(&row.body).map_err(StorageError::backend)?;
    if row.state == CampaignState::Done {
        return Ok(Some(Batch {
            campaign,
            targets: Vec::new(),
            done: true,
        }));
    }
    let page = repo.audience_page(
        Purpose::MarketingOffers,
        Channel::Push,
        &row.cursor,
        members,
    )?;
    let Some(last) = page.last else {
        repo.advance_campaign(
            campaign_id,
            &CampaignStep {
                cursor: &row.cursor,
                members: 0,
                without_device: 0,
                pending: 0,
                state: CampaignState::Done,
            },
            now_ms,
        )?;
        return Ok(Some(Batch {
            campaign,
            targets: Vec::new(),
            done: true,
        }));
    };
    let mut fitting = Vec::with_capacity(page.granted.len());
    for member_id in page.granted {
        if fits(repo, &member_id, &campaign.audience)? {
            fitting.push(member_id);
        }
    }
    let mut batch = CampaignTargets::default();
    for (member_id, devices) in fitting.iter().zip(repo.push_tokens_of(&fitting)?) {
        add_devices(member_id, devices, &mut batch);
    }
    let written = repo.pending_deliveries(campaign_id, &batch.devices, now_ms)?;
    let targets: Vec<PushTarget> = batch
        .devices
        .into_iter()
        .zip(written)
        .filter_map(|(t, new)| new.then_some(t))
        .collect();
    repo.advance_campaign(
        campaign_id,
        &CampaignStep {
            cursor: &last,
            members: batch.members,
            without_device: batch.without_device,
            pending: targets.len() as u64,
            state: CampaignState::Sending,
        },
        now_ms,
    )?;
    Ok(Some(Batch {
        campaign,
        targets,
        done: false,
    }))
}

/// Record what the push service answered for a batch's devices.
pub(crate) fn record(
    repo: &mut dyn Repo,
    campaign_id: &str,
    outcomes: &[(String, Result<(), String>)],
    now_ms: i64,
) -> RepoResult<()> {
    // Counted once: a delivery no longer pending (recorded already) is not counted again.
    let sent = repo.delivered_all(campaign_id, outcomes, now_ms)? as i64;
    super::kpis::count(
        repo,
        tessera_domain::api::metric::PUSHES_SENT,
        None,
        now_ms,
        sent,
    )
}
