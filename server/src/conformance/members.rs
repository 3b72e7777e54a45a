//! Members: enrolment and tokens, mutations under idempotency keys (replay, reuse, concurrency,
//! retention), consent, export and erasure, push campaigns.

use serde_json::json;
use tessera_domain::api::{CampaignAudience, CampaignState};
use tessera_domain::consent::{Channel, ConsentRecord, ConsentSource, Decision, Purpose};

use super::{Backend, NOW, answer, body, enrol, event, mutate, seeded};
use crate::service::Services;
use crate::storage::{DeviceAuth, MutationOutcome, TokenHashes, TokenLookup};

pub async fn enrolment_tokens_and_the_member_state(s: Backend) {
    seeded(&s).await;
    let m = enrol(&s, 1).await;
    let device = DeviceAuth {
        member_id: m.clone(),
        device_id: "d-1".into(),
    };
    assert_eq!(
        s.lookup_access("a-1".into(), NOW).await.unwrap(),
        TokenLookup::Valid(device.clone())
    );
    assert_eq!(
        s.lookup_access("a-1".into(), NOW + 3_600_001)
            .await
            .unwrap(),
        TokenLookup::Expired
    );
    assert_eq!(
        s.lookup_access("a-x".into(), NOW).await.unwrap(),
        TokenLookup::Unknown
    );
    // A refresh token is swapped once: the old tokens stop working, the new ones work.
    let fresh = TokenHashes {
        access_hash: "a-1b".into(),
        access_expires_ms: NOW + 7_200_000,
        refresh_hash: "r-1b".into(),
        refresh_expires_ms: NOW + 86_400_000,
    };
    assert_eq!(
        s.refresh("r-1".into(), NOW, fresh.clone()).await.unwrap(),
        Some(device.clone())
    );
    assert_eq!(s.refresh("r-1".into(), NOW, fresh).await.unwrap(), None);
    assert_eq!(
        s.lookup_access("a-1b".into(), NOW).await.unwrap(),
        TokenLookup::Valid(device)
    );
    assert_eq!(
        s.lookup_access("a-1".into(), NOW).await.unwrap(),
        TokenLookup::Unknown
    );
    let expired = TokenHashes {
        access_hash: "a-1c".into(),
        access_expires_ms: NOW,
        refresh_hash: "r-1c".into(),
        refresh_expires_ms: NOW,
    };
    assert_eq!(
        s.refresh("r-1b".into(), NOW + 86_400_001, expired)
            .await
            .unwrap(),
        None,
        "an expired refresh token"
    );

    let state = s.member_state(m.clone()).await.unwrap();
    assert_eq!(
        (
            state.card_number.as_str(),
            state.holder_name.as_str(),
            state.points_balance
        ),
        ("CARD-1", "Member 1", 0)
    );
    assert!(s.member_state("m-nobody".into()).await.is_err());
    // The version moves with the state.
    let v = s.member_version(m.clone()).await.unwrap();
    mutate(
        &s,
        &m,
        "key-fav-00001",
        json!({"type": "set_favourite_store",
        "store_id": "st-a", "favourite": true}),
    )
    .await;
    assert!(s.member_version(m.clone()).await.unwrap() > v);
    assert_eq!(
        s.member_state(m).await.unwrap().favourite_store_ids,
        ["st-a"]
    );
}

pub async fn a_mutation_applies_once_per_key_and_replays_its_answer(s: Backend) {
    seeded(&s).await;
    let (m1, m2) = (enrol(&s, 1).await, enrol(&s, 2).await);
    let first = mutate(&s, &m1, "key-aaaaaaaa", event("e-1")).await;
    assert!(matches!(first, MutationOutcome::Applied(_)));
    assert_eq!(answer(&first).status, 200);
    let again = mutate(&s, &m1, "key-aaaaaaaa", event("e-1")).await;
    assert_eq!(again, MutationOutcome::Replayed(answer(&first).clone()));
    assert_eq!(
        mutate(&s, &m1, "key-aaaaaaaa", event("e-2")).await,
        MutationOutcome::KeyReused
    );
    // Keys are per member.
    assert!(matches!(
        mutate(&s, &m2, "key-aaaaaaaa", event("e-1")).await,
        MutationOutcome::Applied(_)
    ));
    // A refused mutation's answer is stored and replayed like any other, and changes nothing.
    let unknown = json!({"type": "set_favourite_store", "store_id": "st-nowhere",
        "favourite": true});
    let refused = mutate(&s, &m1, "key-bbbbbbbb", unknown.clone()).await;
    assert_eq!(answer(&refused).status, 422);
    assert_eq!(body(answer(&refused))["code"], "unknown_store");
    assert_eq!(
        mutate(&s, &m1, "key-bbbbbbbb", unknown).await,
        MutationOutcome::Replayed(answer(&refused).clone())
    );
    assert_eq!(
        s.event_ids(m1.clone()).await.unwrap(),
        [("e-1".to_owned(), 1)]
    );
    assert_eq!(s.member_state(m1).await.unwrap().events_recorded, 1);
}

pub async fn concurrent_requests_with_one_key_apply_once(s: Backend) {
    seeded(&s).await;
    let m = enrol(&s, 1).await;
    for round in 0..10 {
        let key = format!("key-concurrent-{round}");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (s, m, key) = (s.clone(), m.clone(), key.clone());
                tokio::spawn(
                    async move { mutate(&s, &m, &key, event(&format!("e-{round}"))).await },
                )
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        let applied = outcomes
            .iter()
            .filter(|o| matches!(o, MutationOutcome::Applied(_)))
            .count();
        assert_eq!(applied, 1, "{outcomes:?}");
        let first = answer(&outcomes[0]);
        assert!(outcomes.iter().all(|o| answer(o) == first));
    }
    let ids = s.event_ids(m).await.unwrap();
    assert_eq!(ids.len(), 10);
    assert!(ids.iter().all(|(_, n)| *n == 1), "{ids:?}");
}

pub async fn keys_are_purged_by_age(s: Backend) {
    seeded(&s).await;
    let m = enrol(&s, 1).await;
    let at = |key: &str, now: i64| {
        let (s, m, key) = (s.clone(), m.clone(), key.to_owned());
        async move {
            s.apply_mutation(
                m,
                key,
                "h".into(),
                serde_json::from_value(event("e-old")).unwrap(),
                now,
            )
            .await
            .unwrap()
        }
    };
    at("key-old-0001", NOW - 40 * 86_400_000).await;
    at("key-new-0001", NOW).await;
    assert_eq!(s.purge_keys(NOW - 35 * 86_400_000).await.unwrap(), 1);
    // The purged key is forgotten: the same key applies anew; the kept one still replays.
    assert!(matches!(
        at("key-old-0001", NOW).await,
        MutationOutcome::Applied(_)
    ));
    assert!(matches!(
        at("key-new-0001", NOW).await,
        MutationOutcome::Replayed(_)
    ));
    assert_eq!(s.purge_keys(NOW - 35 * 86_400_000).await.unwrap(), 0);
}

pub(crate) fn staff_record(
    id: &str,
    member: &str,
    purpose: Purpose,
    decision: Decision,
) -> ConsentRecord {
    ConsentRecord {
        record_id: id.into(),
        member_id: member.into(),
        purpose,
        channel: Channel::Push,
        decision,
        text_version: "v1".into(),
        text_sha256: "0".repeat(64),
        decided_at: "2026-09-21T12:00:00Z".into(),
        effective_at: "2026-09-21T12:00:00Z".into(),
        recorded_at: None,
        source: ConsentSource::InStore,
        recorded_by: Some("staff-1".into()),
        app_version: None,
    }
}

pub async fn consent_audience_export_and_erasure(s: Backend) {
    seeded(&s).await;
    let (m1, m2) = (enrol(&s, 1).await, enrol(&s, 2).await);
    let grant = staff_record("c-0001", &m1, Purpose::MarketingOffers, Decision::Granted);
    let stored = s
        .staff_consent(grant.clone(), NOW)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        stored.recorded_at.is_some(),
        "the server's time is recorded"
    );
    // The same record again is the same record; another body under its id is refused.
    assert_eq!(
        s.staff_consent(grant.clone(), NOW)
            .await
            .unwrap()
            .unwrap()
            .unwrap(),
        stored
    );
    let other = ConsentRecord {
        decision: Decision::Denied,
        ..grant.clone()
    };
    assert!(s.staff_consent(other, NOW).await.unwrap().unwrap().is_err());
    assert!(
        s.staff_consent(
            staff_record("c-0002", "m-nobody", Purpose::Analytics, Decision::Granted),
            NOW
        )
        .await
        .unwrap()
        .is_none()
    );
    assert_eq!(
        s.consent_history(m1.clone()).await.unwrap().unwrap(),
        [stored]
    );
    assert_eq!(s.consent_history("m-nobody".into()).await.unwrap(), None);
    assert_eq!(
        s.audience(Purpose::MarketingOffers, Channel::Push)
            .await
            .unwrap(),
        std::slice::from_ref(&m1)
    );
    assert!(
        s.audience(Purpose::Analytics, Channel::Push)
            .await
            .unwrap()
            .is_empty()
    );
    // A withdrawal takes the member out.
    s.staff_consent(
        staff_record("c-0003", &m1, Purpose::MarketingOffers, Decision::Withdrawn),
        NOW + 1,
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert!(
        s.audience(Purpose::MarketingOffers, Channel::Push)
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        s.set_segments(m1.clone(), vec!["students".into()])
            .await
            .unwrap(),
        Some(())
    );
    assert_eq!(
        s.set_segments("m-nobody".into(), vec![]).await.unwrap(),
        None
    );
    mutate(&s, &m1, "key-event-0001", event("e-1")).await;
    let export = s.export(m1.clone(), NOW).await.unwrap().unwrap();
    assert_eq!(export.member.segments, ["students"]);
    assert_eq!(export.member.consents.len(), 2);
    assert_eq!(export.events.len(), 1);
    assert_eq!(export.devices.len(), 1);
    assert_eq!(s.export("m-nobody".into(), NOW).await.unwrap(), None);

    // Erasure: the member and their tokens are gone; consent records are kept, detached.
    let receipt = s
        .erase(m1.clone(), NOW, "support-1".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(receipt.consent_records_anonymised, 2);
    assert_eq!(
        s.lookup_access("a-1".into(), NOW).await.unwrap(),
        TokenLookup::Unknown
    );
    assert!(s.member_state(m1.clone()).await.is_err());
    assert_eq!(s.export(m1.clone(), NOW).await.unwrap(), None);
    assert_eq!(s.consent_history(m1.clone()).await.unwrap(), None);
    assert_eq!(s.event_ids(m1.clone()).await.unwrap(), []);
    assert_eq!(s.erase(m1, NOW, "support-1".into()).await.unwrap(), None);
    // The other member is untouched.
    assert!(s.member_state(m2).await.is_ok());
}

pub async fn campaigns_reach_consenting_devices_once(s: Backend) {
    use crate::storage::read;
    seeded(&s).await;
    let (m1, _m2, m3) = (enrol(&s, 1).await, enrol(&s, 2).await, enrol(&s, 3).await);
    for (n, m) in [(1, &m1), (3, &m3)] {
        let id = format!("c-000{n}");
        s.staff_consent(
            staff_record(&id, m, Purpose::MarketingOffers, Decision::Granted),
            NOW,
        )
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    }
    // Member 1 has a push token; member 3 consented but has none; member 2 has not consented.
    let token = json!({"type": "set_push_token", "device_id": "d-1", "provider": "fcm",
        "token": "fcm-token-1"});
    assert_eq!(
        answer(&mutate(&s, &m1, "key-push-0001", token).await).status,
        200
    );
    let counted = s.audience_count(CampaignAudience::default()).await.unwrap();
    assert_eq!(
        (counted.members, counted.devices, counted.without_device),
        (2, 1, 1)
    );
    // An audience narrows it.
    let students = CampaignAudience {
        segments: vec!["students".into()],
        ..CampaignAudience::default()
    };
    assert_eq!(s.audience_count(students).await.unwrap().members, 0);
    // Shops: member 1 chose st-a as a favourite, member 3 bought in st-b.
    let favourite = json!({"type": "set_favourite_store", "store_id": "st-a", "favourite": true});
    assert_eq!(
        answer(&mutate(&s, &m1, "key-fav-0001", favourite).await).status,
        200
    );
    let till = super::money::till(&s, "st-b", 1).await;
    let bought = super::money::till_op(
        &s,
        &till,
        "key-shop-0001",
        super::money::purchase("R-SHOP-1", "CARD-3", 1_000),
    )
    .await;
    assert_eq!(bought["member_id"], json!(m3), "{bought}");
    let of = |shops: &[&str]| CampaignAudience {
        shops: shops.iter().map(|x| (*x).to_owned()).collect(),
        ..CampaignAudience::default()
    };
    for (shops, reached) in [
        (vec!["st-a"], 1),
        (vec!["st-b"], 1),
        (vec!["st-a", "st-b"], 2),
        (vec!["st-c"], 0),
    ] {
        let counted = s.audience_count(of(&shops)).await.unwrap();
        assert_eq!(counted.members, reached, "{shops:?}");
        // A batch asks member by member: the same answer.
        let list: Vec<String> = shops.iter().map(|x| (*x).to_owned()).collect();
        let (one_by_one, all) = read(&*s, {
            let (m1, m2, m3) = (m1.clone(), _m2.clone(), m3.clone());
            move |repo| {
                let mut each = Vec::new();
                for m in [&m1, &m2, &m3] {
                    if repo.in_shops(m, &list)? {
                        each.push(m.clone());
                    }
                }
                let mut all: Vec<String> = repo.shops_members(&list)?.into_iter().collect();
                all.sort();
                Ok((each, all))
            }
        })
        .await
        .unwrap();
        assert_eq!(one_by_one, all, "{shops:?}");
    }
    let counted = s.audience_count(of(&["st-a"])).await.unwrap();
    assert_eq!((counted.devices, counted.without_device), (1, 0));
    // Interests: member 1 declared coffee; member 3 declared none (counted for any).
    let coffee = json!({"type": "set_preferences", "changes": [
        {"field": "interests", "value": ["coffee"]}]});
    assert_eq!(
        answer(&mutate(&s, &m1, "key-int-0001", coffee).await).status,
        200
    );
    let interested = |k: &[&str]| CampaignAudience {
        categories: k.iter().map(|x| (*x).to_owned()).collect(),
        ..CampaignAudience::default()
    };
    let tea = s.audience_count(interested(&["tea"])).await.unwrap();
    assert_eq!((tea.members, tea.devices), (1, 0), "member 3 only");
    let coffee = s
        .audience_count(interested(&["coffee", "tea"]))
        .await
        .unwrap();
    assert_eq!((coffee.members, coffee.devices), (2, 1));
    // Tiers (as last reviewed): the consenting members at each one's tier; nobody at a tier
    // that does not exist.
    let stored = |m: &String| {
        let m = m.clone();
        read(&*s, move |repo| Ok(repo.member(&m)?.map(|r| r.tier)))
    };
    let tier1 = stored(&m1).await.unwrap().unwrap();
    let tier3 = stored(&m3).await.unwrap().unwrap();
    let at = |t: &str| CampaignAudience {
        tiers: vec![t.to_owned()],
        ..CampaignAudience::default()
    };
    let expected = if tier1 == tier3 { 2 } else { 1 };
    assert_eq!(
        s.audience_count(at(&tier1)).await.unwrap().members,
        expected
    );
    assert_eq!(
        s.audience_count(at(&tier3)).await.unwrap().members,
        expected
    );
    assert_eq!(s.audience_count(at("Platinum")).await.unwrap().members, 0);

    // Sent by the job queue, a member per batch: the job is one worker's while its lease lasts.
    let mut offer = serde_json::to_value(&super::catalog().offers[0]).unwrap();
    offer["id"] = json!("of-camp-1");
    let body = json!({"id": "camp-1", "offer": offer, "expires_at": "2027-01-01T00:00:00Z"});
    assert!(
        s.create_campaign("camp-1".into(), body.to_string(), NOW, NOW)
            .await
            .unwrap()
    );
    assert!(
        !s.create_campaign("camp-1".into(), "{}".into(), NOW, NOW)
            .await
            .unwrap()
    );
    let report = s.campaign_report("camp-1".into()).await.unwrap().unwrap();
    assert_eq!((report.state, report.members), (CampaignState::Queued, 0));
    let lease = 30_000;
    let job = s
        .claim_job("worker-a".into(), NOW, lease)
        .await
        .unwrap()
        .expect("the campaign's job");
    assert_eq!(
        (job.kind.as_str(), job.subject.as_str()),
        ("campaign", "camp-1")
    );
    assert_eq!(
        s.claim_job("worker-b".into(), NOW + 1, lease)
            .await
            .unwrap(),
        None,
        "a leased job is not claimed twice"
    );
    let batch = |owner: &str, at: i64| {
        let (s, owner) = (s.clone(), owner.to_owned());
        async move {
            s.campaign_batch(job.id, owner, lease, "camp-1".into(), 1, at)
                .await
                .unwrap()
        }
    };
    // Member 1: one device, written as pending and handed over; the worker then stops before
    // it records the outcome (a crash).
    let first = batch("worker-a", NOW + 2).await.unwrap();
    assert_eq!(
        (
            first.targets.len(),
            first.targets[0].token.as_str(),
            first.done
        ),
        (1, "fcm-token-1", false)
    );
    let sending = s.campaign_report("camp-1".into()).await.unwrap().unwrap();
    assert_eq!(
        (sending.state, sending.members, sending.unknown),
        (CampaignState::Sending, 1, 0)
    );
    // Its lease runs out: another worker resumes after the cursor, and never sends that device
    // again; the first one, back, finds the job taken.
    let resumed = s
        .claim_job("worker-b".into(), NOW + 2 + lease + 1, lease)
        .await
        .unwrap()
        .expect("an expired lease is claimed again");
    assert_eq!((resumed.id, resumed.attempts), (job.id, 2));
    assert!(batch("worker-a", NOW + lease + 4).await.is_none());
    let second = batch("worker-b", NOW + lease + 5).await.unwrap();
    assert!(
        second.targets.is_empty() && !second.done,
        "member 2 did not consent"
    );
    let third = batch("worker-b", NOW + lease + 5).await.unwrap();
    assert!(
        third.targets.is_empty() && !third.done,
        "member 3 has no device"
    );
    let last = batch("worker-b", NOW + lease + 6).await.unwrap();
    assert!(last.done);
    s.finish_job(job.id, "worker-b".into(), None, NOW + lease + 7)
        .await
        .unwrap();
    let report = s.campaign_report("camp-1".into()).await.unwrap().unwrap();
    assert_eq!(
        (
            report.state,
            report.members,
            report.without_device,
            report.sent,
            report.failed,
            report.unknown
        ),
        (CampaignState::Done, 2, 1, 0, 0, 1),
        "the device handed over before the crash: sent at most once, its outcome unknown"
    );
    // The stalled worker's late news is recorded once; a second outcome changes nothing.
    for outcome in [Ok(()), Err("410 unregistered".to_owned())] {
        s.record_deliveries(
            "camp-1".into(),
            vec![("d-1".into(), outcome)],
            NOW + lease + 8,
        )
        .await
        .unwrap();
    }
    let again = s.campaign_report("camp-1".into()).await.unwrap().unwrap();
    assert_eq!((again.sent, again.failed, again.unknown), (1, 0, 0));
    // The KPIs count the push once too.
    {
        use crate::service::kpis::KpiServices;
        let day = tessera_domain::api::day_of(NOW);
        let kpis = s.kpis(None, day - 1, day + 1).await.unwrap();
        assert_eq!(kpis.totals.pushes_sent, 1);
    }
    assert_eq!(
        s.claim_job("worker-c".into(), NOW + 10 * lease, lease)
            .await
            .unwrap(),
        None,
        "a finished job is not claimed"
    );
    assert_eq!(s.campaign_report("camp-none".into()).await.unwrap(), None);
}

/// A business transaction is all or nothing: a refusal (`write_unless`) or an error rolls back
/// everything it wrote; a snapshot sees only committed data and cannot write.
pub async fn a_transaction_commits_whole_or_not_at_all(s: Backend) {
    use crate::storage::{StorageError, read, write, write_unless};
    seeded(&s).await;
    let m = enrol(&s, 1).await;
    let birthday = |s: Backend, m: String| async move {
        read(&*s, move |repo| {
            Ok(repo.member(&m)?.and_then(|r| r.birthday))
        })
        .await
        .unwrap()
    };
    // A refusal after a write: nothing of it stays.
    let (m2, refused) = (m.clone(), "refused");
    let out = write_unless(&*s, move |repo| {
        repo.set_birthday(&m2, Some("03-14"))?;
        Ok(Err::<(), _>(refused))
    })
    .await
    .unwrap();
    assert_eq!(out, Err("refused"));
    assert_eq!(birthday(s.clone(), m.clone()).await, None);
    // An error after a write: the same, and the error is returned.
    let m2 = m.clone();
    let failed = write(&*s, move |repo| {
        repo.set_birthday(&m2, Some("03-14"))?;
        Err::<(), _>(StorageError::Conflict("stop".into()))
    })
    .await;
    assert!(matches!(failed, Err(StorageError::Conflict(_))));
    assert_eq!(birthday(s.clone(), m.clone()).await, None);
    // Success commits.
    let m2 = m.clone();
    write(&*s, move |repo| repo.set_birthday(&m2, Some("03-14")))
        .await
        .unwrap();
    assert_eq!(
        birthday(s.clone(), m.clone()).await.as_deref(),
        Some("03-14")
    );
    // A snapshot is read-only.
    let m2 = m.clone();
    let wrote = read(&*s, move |repo| repo.set_birthday(&m2, None)).await;
    assert!(wrote.is_err(), "a snapshot wrote: {wrote:?}");
    assert_eq!(birthday(s.clone(), m).await.as_deref(), Some("03-14"));
}

/// Preferences, analytics behind the consent gate, opt-in challenges and badges: what a phone's
/// everyday mutations store, as the member's state and export show it.
pub async fn preferences_analytics_joins_and_badges(s: Backend) {
    use tessera_domain::rules::RuleSet;
    seeded(&s).await;
    let m = enrol(&s, 1).await;
    let status = |o: MutationOutcome| answer(&o).status;
    // Preferences: stored in the order they arrive; the last write of a field wins.
    for (key, zone) in [
        ("key-pref-001", "Asia/Tokyo"),
        ("key-pref-002", "Europe/Paris"),
    ] {
        let prefs = json!({"type": "set_preferences", "changes": [
            {"field": "timezone", "value": zone}, {"field": "interests", "value": ["tea"]}]});
        assert_eq!(status(mutate(&s, &m, key, prefs).await), 200);
    }
    let state = s.member_state(m.clone()).await.unwrap();
    assert_eq!(state.preferences.timezone, "Europe/Paris");
    assert_eq!(state.preferences.interests, ["tea"]);
    // Analytics: refused until the member consents to them in the app, then stored.
    let track = |id: &str| {
        json!({"type": "track_event", "event": {"event_id": id, "name": "offer_viewed",
            "occurred_at": "2026-09-21T12:00:00Z", "attributes": {"offer": "of-any"}}})
    };
    let refused = mutate(&s, &m, "key-track-01", track("an-1")).await;
    assert_eq!(answer(&refused).status, 422);
    assert_eq!(body(answer(&refused))["code"], "consent_required");
    let analytics = ConsentRecord {
        channel: Channel::InApp,
        ..staff_record("c-an-1", &m, Purpose::Analytics, Decision::Granted)
    };
    s.staff_consent(analytics, NOW)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        status(mutate(&s, &m, "key-track-02", track("an-2")).await),
        200
    );
    let export = s.export(m.clone(), NOW).await.unwrap().unwrap();
    let names: Vec<_> = export
        .analytics
        .iter()
        .map(|a| a.event_id.as_str())
        .collect();
    assert_eq!(names, ["an-2"]);
    assert_eq!(export.devices.len(), 1);
    // An opt-in challenge counts only once joined; its completion earns the badge once.
    let rules: RuleSet = serde_json::from_value(json!({"version": 1, "challenges": [{
        "id": "visit", "title": "Come and see us", "opt_in": true, "badge": "visitor",
        "window": {"type": "rolling_days", "days": 30},
        "goal": {"type": "count", "target": 1, "filter": {"kinds": ["store_visit"]}},
        "reward": {"type": "badge"}}]}))
    .unwrap();
    s.put_challenge_rules(rules).await.unwrap();
    let join = |id: &str| {
        json!({"type": "join_challenge", "challenge_id": id,
            "joined_at": "2026-09-21T14:00:00Z"})
    };
    let unknown = mutate(&s, &m, "key-join-001", join("nope")).await;
    assert_eq!(body(answer(&unknown))["code"], "unknown_challenge");
    let visit = |id: &str| {
        json!({"type": "record_event", "event": {"event_id": id, "kind": "store_visit",
            "occurred_at": "2026-09-21T14:05:00Z", "store_id": "st-a"}})
    };
    assert_eq!(
        status(mutate(&s, &m, "key-visit-01", visit("v-1")).await),
        200
    );
    assert!(s.member_state(m.clone()).await.unwrap().badges.is_empty());
    assert_eq!(
        status(mutate(&s, &m, "key-join-002", join("visit")).await),
        200
    );
    assert_eq!(
        status(mutate(&s, &m, "key-visit-02", visit("v-2")).await),
        200
    );
    assert_eq!(
        status(mutate(&s, &m, "key-visit-03", visit("v-3")).await),
        200
    );
    let state = s.member_state(m).await.unwrap();
    assert_eq!(state.joined_challenges.len(), 1);
    let badges: Vec<_> = state.badges.iter().map(|b| b.badge.as_str()).collect();
    assert_eq!(badges, ["visitor"]);
}

/// Processes are counted by their heartbeats: one silent for longer than `alive` is not, one
/// that left is not, and one silent for long is forgotten.
pub async fn heartbeats_count_the_live_processes(s: Backend) {
    let alive = 15_000;
    assert_eq!(s.heartbeat("p-a".into(), NOW, alive).await.unwrap(), 1);
    assert_eq!(s.heartbeat("p-b".into(), NOW + 1, alive).await.unwrap(), 2);
    assert_eq!(
        s.heartbeat("p-a".into(), NOW + alive, alive).await.unwrap(),
        2,
        "b was seen within the window"
    );
    assert_eq!(
        s.heartbeat("p-a".into(), NOW + 2 * alive, alive)
            .await
            .unwrap(),
        1,
        "b fell silent"
    );
    assert_eq!(
        s.heartbeat("p-b".into(), NOW + 2 * alive, alive)
            .await
            .unwrap(),
        2
    );
    s.leave("p-a".into()).await.unwrap();
    assert_eq!(
        s.heartbeat("p-b".into(), NOW + 2 * alive + 1, alive)
            .await
            .unwrap(),
        1,
        "a left"
    );
}

/// A member's kept rules engine: stored, replaced, forgotten, and gone with the member; the ids
/// counted answer with the earliest time they were noted at, and a rebuild replaces them all.
pub async fn kept_rule_engines_and_counted_ids(s: Backend) {
    use crate::storage::repo::KeptRules;
    use crate::storage::{read, write};
    seeded(&s).await;
    let m = enrol(&s, 1).await;
    let kept = |seq: i64, state: &str| KeptRules {
        rules_seq: seq,
        time_zone: "Europe/Paris".into(),
        joins: "c-1@5".into(),
        state: state.into(),
    };
    let get = |m: String| {
        let s = s.clone();
        async move { read(&*s, move |repo| repo.rule_state(&m)).await.unwrap() }
    };
    assert_eq!(get(m.clone()).await, None);
    let (m2, k1, k2) = (m.clone(), kept(3, "{\"a\":1}"), kept(4, "{\"b\":2}"));
    write(&*s, move |repo| {
        repo.put_rule_state(&m2, &k1)?;
        repo.put_rule_state(&m2, &k2)
    })
    .await
    .unwrap();
    assert_eq!(get(m.clone()).await, Some(kept(4, "{\"b\":2}")), "replaced");

    let m2 = m.clone();
    let noted = write(&*s, move |repo| {
        Ok([
            repo.note_applied(&m2, "ev-1", 100)?,
            repo.note_applied(&m2, "ev-1", 50)?,
            repo.note_applied(&m2, "ev-1", 200)?,
            repo.note_applied(&m2, "ev-2", 150)?,
        ])
    })
    .await
    .unwrap();
    assert_eq!(
        noted,
        [None, Some(100), Some(100), None],
        "the first time stays"
    );
    let m2 = m.clone();
    let after = write(&*s, move |repo| {
        repo.reset_applied(&m2, &[("ev-2", 10), ("ev-3", 20)])?;
        Ok([
            repo.note_applied(&m2, "ev-1", 300)?,
            repo.note_applied(&m2, "ev-2", 300)?,
            repo.note_applied(&m2, "ev-3", 300)?,
        ])
    })
    .await
    .unwrap();
    assert_eq!(
        after,
        [None, Some(10), Some(20)],
        "replaced by the rebuild's ids"
    );

    let m2 = m.clone();
    write(&*s, move |repo| repo.forget_rule_state(&m2))
        .await
        .unwrap();
    assert_eq!(get(m.clone()).await, None, "forgotten");
    let (m2, k) = (m.clone(), kept(5, "{}"));
    write(&*s, move |repo| repo.put_rule_state(&m2, &k))
        .await
        .unwrap();
    s.erase(m.clone(), NOW, "support-1".into()).await.unwrap();
    assert_eq!(get(m.clone()).await, None, "gone with the member");

    // The rule set's version: the catalog sequence it was put at, a new one on every put.
    let version = || {
        let s = s.clone();
        async move {
            read(&*s, |repo| repo.versioned_rule_set())
                .await
                .unwrap()
                .map(|(seq, rules)| (seq, rules.challenges.len()))
        }
    };
    assert_eq!(version().await, None, "no rule set put");
    let rules: tessera_domain::rules::RuleSet = serde_json::from_value(json!({"version": 1,
        "challenges": [{"id": "c-1", "title": "One visit", "window": {"type": "calendar_month"},
            "goal": {"type": "count", "target": 1, "filter": {"kinds": ["store_visit"]}},
            "reward": {"type": "badge"}}]}))
    .unwrap();
    s.put_challenge_rules(rules.clone()).await.unwrap();
    let (first, n) = version().await.unwrap();
    assert_eq!(n, 1);
    s.put_challenge_rules(rules).await.unwrap();
    let (second, _) = version().await.unwrap();
    assert!(second > first, "{second} after {first}");
}

/// Device certificates: revoked one device at a time or all at once, listed for tills while
/// they have not expired, revoked and detached when the member is erased.
pub async fn device_certificates_are_revoked_and_listed_until_they_expire(s: Backend) {
    use crate::storage::repo::NewCertificate;
    use crate::storage::{read, write};
    seeded(&s).await;
    let (m1, m2) = (enrol(&s, 1).await, enrol(&s, 2).await);
    let day = 86_400_000;
    let certs = [
        (11, m1.clone(), "d-1", NOW + 30 * day),
        (12, m1.clone(), "d-1b", NOW + 30 * day),
        (13, m1.clone(), "d-1c", NOW + day),
        (21, m2.clone(), "d-2", NOW + 30 * day),
    ];
    write(&*s, move |repo| {
        for (serial, member, device, not_after) in &certs {
            repo.insert_certificate(&NewCertificate {
                serial: *serial,
                member_id: member,
                device_id: device,
                public_key: "pk",
                issued_ms: NOW,
                not_after_ms: *not_after,
            })?;
        }
        Ok(())
    })
    .await
    .unwrap();
    let revoked = |at: i64| {
        let s = s.clone();
        async move {
            read(&*s, move |repo| repo.revoked_serials(at))
                .await
                .unwrap()
        }
    };
    assert!(revoked(NOW).await.is_empty());
    let m = m1.clone();
    let one = write(&*s, move |repo| {
        repo.revoke_certificates(&m, Some("d-1b"), NOW)
    })
    .await
    .unwrap();
    assert_eq!(one, 1);
    assert_eq!(revoked(NOW).await, [12]);
    let m = m1.clone();
    let rest = write(&*s, move |repo| repo.revoke_certificates(&m, None, NOW + 1))
        .await
        .unwrap();
    assert_eq!(rest, 2, "d-1 and d-1c; d-1b was already");
    assert_eq!(revoked(NOW + 2).await, [11, 12, 13]);
    assert_eq!(
        revoked(NOW + 2 * day).await,
        [11, 12],
        "13 expired: no till needs it"
    );
    s.erase(m2.clone(), NOW + 3, "support-1".into())
        .await
        .unwrap();
    assert_eq!(revoked(NOW + 4).await, [11, 12, 13, 21], "erased: revoked");
    let m = m2.clone();
    let after = write(&*s, move |repo| repo.revoke_certificates(&m, None, NOW + 5))
        .await
        .unwrap();
    assert_eq!(after, 0, "detached from the erased member");
    let at = |serial: i64| {
        let s = s.clone();
        async move {
            read(&*s, move |repo| repo.certificate_revoked_at(serial))
                .await
                .unwrap()
        }
    };
    assert_eq!(
        at(12).await,
        Some(Some(NOW)),
        "when, for an offline purchase"
    );
    assert_eq!(at(11).await, Some(Some(NOW + 1)));
    assert_eq!(at(21).await, Some(Some(NOW + 3)));
    assert_eq!(at(999).await, None, "unknown serial");
}

/// Wallet passes: inserted once, marked stale by every change to the member, cleared only when
/// nothing changed since the worker looked, registrations listed by update tag, forgotten by
/// push token and with the member.
pub async fn wallet_passes_are_marked_stale_registered_and_forgotten(s: Backend) {
    use crate::storage::repo::PassRow;
    use crate::storage::{read, write};
    seeded(&s).await;
    let (m1, m2) = (enrol(&s, 1).await, enrol(&s, 2).await);
    let row = |serial: &str, member: &str| PassRow {
        serial: serial.into(),
        member_id: member.into(),
        coupon_id: None,
        auth_token: "t".repeat(32),
        shops: "[]".into(),
        digest: "d0".into(),
        pushed_digest: "d0".into(),
        updated_ms: NOW,
        stale: 0,
        google: false,
    };
    let (a, b) = (row("card-a", &m1), row("card-b", &m2));
    let inserted = write(&*s, move |repo| {
        Ok((
            repo.insert_wallet_pass(&a)?,
            repo.insert_wallet_pass(&b)?,
            repo.insert_wallet_pass(&a)?,
        ))
    })
    .await
    .unwrap();
    assert_eq!(inserted, (true, true, false), "a serial is issued once");
    let stale = |s: &Backend| {
        let s = s.clone();
        async move { read(&*s, |repo| repo.stale_passes("", 10)).await.unwrap() }
    };
    assert!(stale(&s).await.is_empty());
    let m = m1.clone();
    write(&*s, move |repo| {
        repo.touch_member(&m)?;
        repo.touch_member(&m)
    })
    .await
    .unwrap();
    assert_eq!(stale(&s).await, [("card-a".to_owned(), 2)]);
    let m = m2.clone();
    write(&*s, move |repo| repo.count_mutation(&m, true).map(|_| ()))
        .await
        .unwrap();
    assert_eq!(
        stale(&s).await,
        [("card-a".to_owned(), 2), ("card-b".to_owned(), 1)]
    );
    let after_a = read(&*s, |repo| repo.stale_passes("card-a", 10))
        .await
        .unwrap();
    assert_eq!(after_a, [("card-b".to_owned(), 1)], "round-robin by serial");
    // The worker saw 2; a change since keeps the pass stale.
    let m = m1.clone();
    write(&*s, move |repo| {
        repo.pass_changed("card-a", "d1", NOW)?;
        repo.touch_member(&m)?;
        repo.pass_pushed("card-a", "d1", 2)
    })
    .await
    .unwrap();
    let a = read(&*s, |repo| repo.wallet_pass("card-a"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a.pushed_digest.as_str(), a.stale), ("d1", 3));
    assert!(a.updated_ms > NOW, "the update tag always moves");
    write(&*s, |repo| repo.pass_pushed("card-a", "d1", 3))
        .await
        .unwrap();
    write(&*s, |repo| repo.pass_pushed("card-b", "d0", 1))
        .await
        .unwrap();
    assert!(stale(&s).await.is_empty());

    let registered = write(&*s, |repo| {
        Ok((
            repo.register_pass("dev-1", "card-a", "tok-1", NOW)?,
            repo.register_pass("dev-1", "card-a", "tok-1b", NOW)?,
            repo.register_pass("dev-2", "card-a", "tok-2", NOW)?,
            repo.register_pass("dev-1", "card-b", "tok-1b", NOW)?,
        ))
    })
    .await
    .unwrap();
    assert_eq!(registered, (true, false, true, true));
    let tokens = read(&*s, |repo| repo.pass_push_tokens("card-a"))
        .await
        .unwrap();
    assert_eq!(
        tokens,
        ["tok-1b", "tok-2"],
        "a new token replaces the device's"
    );
    let since = read(&*s, move |repo| {
        Ok((
            repo.device_passes("dev-1", -1)?,
            repo.device_passes("dev-1", a.updated_ms)?,
        ))
    })
    .await
    .unwrap();
    assert_eq!(since.0.len(), 2);
    assert!(since.1.is_empty(), "nothing changed since the newest tag");
    let forgotten = write(&*s, |repo| repo.forget_pass_push_token("tok-1b"))
        .await
        .unwrap();
    assert_eq!(forgotten, 2);
    assert!(
        write(&*s, |repo| repo.unregister_pass("dev-2", "card-a"))
            .await
            .unwrap()
    );
    assert!(
        !write(&*s, |repo| repo.unregister_pass("dev-2", "card-a"))
            .await
            .unwrap()
    );
    let m = m1.clone();
    let deleted = write(&*s, move |repo| repo.delete_member_passes(&m))
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert!(
        read(&*s, |repo| repo.wallet_pass("card-a"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        read(&*s, |repo| repo.wallet_pass("card-b"))
            .await
            .unwrap()
            .is_some()
    );
}
