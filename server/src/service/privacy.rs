//! Consent, preferences, analytics and the member's rights: the ledger's records (never
//! changed), the gate they make, the member's export and erasure.

use tessera_domain::api::{AnalyticsEvent, ErasureReceipt, EventData, MemberExport, MemberState};
use tessera_domain::consent::{ConsentGate, ConsentRecord, Feature};
use tessera_domain::preferences::{PreferenceChange, Preferences};
use tessera_domain::rfc3339_ms as rfc3339;

use crate::storage::repo::RepoResult;
use crate::storage::{Refusal, Repo, StorageError};

fn sha256(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn gate(repo: &mut dyn Repo, member_id: &str) -> RepoResult<ConsentGate> {
    Ok(ConsentGate::from_records(&repo.consent_records(member_id)?))
}

/// The member's preferences: the defaults, with each stored field applied.
pub(crate) fn preferences(repo: &mut dyn Repo, member_id: &str) -> RepoResult<Preferences> {
    let mut prefs = Preferences::default();
    for (field, value) in repo.preference_values(member_id)? {
        stored_change(field, &value)?.apply(&mut prefs);
    }
    Ok(prefs)
}

/// A stored preference field and its JSON value, as the change that set it.
pub(crate) fn stored_change(field: String, value: &str) -> RepoResult<PreferenceChange> {
    let json = format!(
        r#"{{"field":{},"value":{value}}}"#,
        serde_json::Value::String(field)
    );
    serde_json::from_str(&json)
        .map_err(|e| StorageError::Backend(format!("stored preference: {e}")))
}

/// Every member who declared interests, and theirs (one statement: counting an audience).
pub(crate) fn declared_interests(
    repo: &mut dyn Repo,
) -> RepoResult<std::collections::HashMap<String, Vec<String>>> {
    let field = PreferenceChange::Interests { value: Vec::new() }.field();
    let mut out = std::collections::HashMap::new();
    for (member_id, value) in repo.field_values(field)? {
        let mut prefs = Preferences::default();
        stored_change(field.to_owned(), &value)?.apply(&mut prefs);
        if !prefs.interests.is_empty() {
            out.insert(member_id, prefs.interests);
        }
    }
    Ok(out)
}

/// Append `record`, stamped `recorded_at = now`. A repeat of the same record is a no-op (the
/// stored one is returned); the same id with other content is refused.
pub(crate) fn record_consent(
    repo: &mut dyn Repo,
    record: &ConsentRecord,
    now_ms: i64,
) -> RepoResult<Result<ConsentRecord, Refusal>> {
    let mut body = record.clone();
    body.recorded_at = None;
    let body_hash = sha256(&serde_json::to_string(&body).map_err(StorageError::backend)?);
    if let Some((stored, hash)) = repo.consent_record(&record.record_id)? {
        return Ok(if hash == body_hash {
            Ok(stored)
        } else {
            Err(Refusal::ConsentRecordReused {
                record_id: record.record_id.clone(),
            })
        });
    }
    let effective_ms = record
        .effective_at
        .parse::<jiff::Timestamp>()
        .map_err(StorageError::backend)?
        .as_millisecond();
    let mut stored = record.clone();
    stored.recorded_at = Some(rfc3339(now_ms));
    let before = gate(repo, &stored.member_id)?;
    repo.insert_consent(&stored, effective_ms, &body_hash)?;
    super::kpis::count_consent(
        repo,
        &stored.member_id,
        before,
        stored.purpose,
        stored.channel,
        now_ms,
    )?;
    super::webhooks::emit(
        repo,
        &stored.member_id,
        EventData::ConsentRecorded {
            record_id: stored.record_id.clone(),
            purpose: stored.purpose,
            channel: stored.channel,
            decision: stored.decision,
            source: stored.source,
        },
        now_ms,
    )?;
    Ok(Ok(stored))
}

/// A record made by staff on the member's behalf; `None` if there is no such member.
pub(crate) fn staff_consent(
    repo: &mut dyn Repo,
    record: &ConsentRecord,
    now_ms: i64,
) -> RepoResult<Option<Result<ConsentRecord, Refusal>>> {
    if repo.member(&record.member_id)?.is_none() {
        return Ok(None);
    }
    let stored = record_consent(repo, record, now_ms)?;
    if stored.is_ok() {
        repo.touch_member(&record.member_id)?;
    }
    Ok(Some(stored))
}

/// Apply changed preference fields in the server's order.
pub(crate) fn set_preferences(
    repo: &mut dyn Repo,
    member_id: &str,
    changes: &[PreferenceChange],
) -> RepoResult<()> {
    for change in changes {
        let value = serde_json::to_value(change)
            .ok()
            .and_then(|v| v.get("value").cloned())
            .unwrap_or(serde_json::Value::Null);
        repo.set_preference(member_id, change.field(), &value.to_string())?;
    }
    Ok(())
}

/// Store a usage event if the member's ledger allows analytics now.
pub(crate) fn track(
    repo: &mut dyn Repo,
    member_id: &str,
    event: &AnalyticsEvent,
    now_ms: i64,
) -> RepoResult<Result<(), Refusal>> {
    if !gate(repo, member_id)?.permits(Feature::Analytics) {
        return Ok(Err(Refusal::ConsentRequired));
    }
    repo.insert_analytics(member_id, event, now_ms)?;
    // The apps report a tap on a push as `push_opened` (docs/console.md, KPIs).
    if event.name == tessera_domain::api::PUSH_OPENED_EVENT {
        let metric = tessera_domain::api::metric::PUSHES_OPENED;
        super::kpis::count(repo, metric, None, now_ms, 1)?;
    }
    Ok(Ok(()))
}

/// Everything held about the member (`state` is what `GET /v1/me` shows).
pub(crate) fn export(
    repo: &mut dyn Repo,
    state: MemberState,
    now_ms: i64,
) -> RepoResult<MemberExport> {
    let member_id = state.member_id.clone();
    let member = repo.member(&member_id)?.ok_or(StorageError::NotFound)?;
    Ok(MemberExport {
        generated_at: rfc3339(now_ms),
        member_since: member.member_since,
        devices: repo.devices(&member_id)?,
        events: repo.activity(&member_id)?,
        analytics: repo.analytics(&member_id)?,
        member: state,
    })
}

/// Erase the member: consent records are detached (each under its own random id, so they cannot
/// be linked back or to each other), idempotency answers deleted, the member and everything
/// hanging off it deleted; the merchant's records (coupons, purchases) kept, detached. `None`
/// if there is no such member.
pub(crate) fn erase(
    repo: &mut dyn Repo,
    member_id: &str,
    now_ms: i64,
    requested_by: &str,
) -> RepoResult<Option<ErasureReceipt>> {
    if repo.member(member_id)?.is_none() {
        return Ok(None);
    }
    repo.delete_member_passes(member_id)?;
    let granted = gate(repo, member_id)?;
    let anonymised = repo.erase_member(member_id, now_ms, requested_by)?;
    super::kpis::count_erasure(repo, granted, now_ms)?;
    // What the member's events told is no longer kept (those still to be delivered go, then
    // the erasure itself, so that the receivers erase too).
    repo.forget_member_events(member_id)?;
    super::webhooks::emit(repo, member_id, EventData::MemberErased {}, now_ms)?;
    Ok(Some(ErasureReceipt {
        erased_at: rfc3339(now_ms),
        consent_records_anonymised: anonymised,
    }))
}
