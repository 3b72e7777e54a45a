//! Webhooks: the outbox written with the change, claims in order per (endpoint, member) under a
//! lease, retries, the dead-letter list, replay, erasure and the purge.

use tessera_domain::api::{EventType, PointsAdjustment, WebhookEndpointSpec};

use super::{Backend, NOW, enrol, seeded};
use crate::service::Services;
use crate::service::webhooks::WebhookServices;
use crate::storage::repo::{ClaimedDelivery, DeliveryOutcome, NewEvent};
use crate::storage::{read, write};

const LEASE: i64 = 60_000;

fn spec(events: &[EventType]) -> WebhookEndpointSpec {
    WebhookEndpointSpec {
        url: "https://crm.example/hook".into(),
        events: events.to_vec(),
        description: Some("the CRM".into()),
        paused: false,
    }
}

async fn emit(s: &Backend, member: &str, event_type: &str, id: &str) -> Option<i64> {
    let (member, event_type, id) = (member.to_owned(), event_type.to_owned(), id.to_owned());
    write(&**s, move |repo| {
        repo.emit_event(&NewEvent {
            id: &id,
            member_id: &member,
            event_type: &event_type,
            data: r#"{"type":"member.erased","data":{}}"#,
            now_ms: NOW,
        })
    })
    .await
    .unwrap()
}

async fn claim(s: &Backend, owner: &str, at: i64) -> Vec<(String, String, u32)> {
    let owner = owner.to_owned();
    write(&**s, move |repo| {
        repo.claim_deliveries(&owner, at, LEASE, 50)
    })
    .await
    .unwrap()
    .into_iter()
    .map(|c: ClaimedDelivery| (c.endpoint_id, c.event.id, c.attempts))
    .collect()
}

fn claimed(endpoint: &str, event: &str, attempts: u32) -> (String, String, u32) {
    (endpoint.into(), event.into(), attempts)
}

async fn seq_of(s: &Backend, event: &str) -> i64 {
    let event = event.to_owned();
    read(&**s, move |repo| repo.deliveries("all", None, 0, 1000))
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.event.id == event)
        .map(|d| d.event.seq)
        .expect("a delivery of the event")
}

async fn record(
    s: &Backend,
    owner: &str,
    outcomes: Vec<(&str, &str, Option<&str>, Option<i64>)>,
    at: i64,
) -> u64 {
    let mut rows = Vec::new();
    for (endpoint, event, error, retry_at_ms) in outcomes {
        rows.push(DeliveryOutcome {
            endpoint_id: endpoint.into(),
            event_seq: seq_of(s, event).await,
            status: Some(if error.is_none() { 200 } else { 500 }),
            error: error.map(str::to_owned),
            retry_at_ms,
        });
    }
    s.record_outcomes(owner.into(), rows, at).await.unwrap()
}

async fn states(s: &Backend, endpoint: &str, state: &str) -> Vec<String> {
    let (endpoint, state) = (endpoint.to_owned(), state.to_owned());
    read(&**s, move |repo| {
        repo.deliveries(&endpoint, Some(&state), 0, 1000)
    })
    .await
    .unwrap()
    .into_iter()
    .map(|d| d.event.id)
    .collect()
}

pub async fn webhook_deliveries_are_claimed_in_order_retried_and_replayed(s: Backend) {
    seeded(&s).await;
    let m1 = enrol(&s, 1).await;
    // No endpoint: the outbox stays empty.
    assert_eq!(emit(&s, &m1, "points.changed", "evt_0").await, None);

    let all = s
        .create_endpoint("all".into(), spec(&[]), NOW)
        .await
        .unwrap()
        .expect("created");
    assert!(all.secret.as_deref().unwrap().starts_with("whsec_"));
    assert!(
        s.create_endpoint("all".into(), spec(&[]), NOW)
            .await
            .unwrap()
            .is_none(),
        "an id is taken once"
    );
    let points = s
        .create_endpoint("points".into(), spec(&[EventType::PointsChanged]), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(points.events, [EventType::PointsChanged]);
    let listed = s.endpoints().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|e| e.secret.is_none()),
        "a secret is shown once"
    );

    let (m2, m3) = ("m-2", "m-3");
    let e1 = emit(&s, &m1, "points.changed", "evt_1").await.unwrap();
    let e2 = emit(&s, &m1, "coupon.issued", "evt_2").await.unwrap();
    let e3 = emit(&s, &m1, "points.changed", "evt_3").await.unwrap();
    emit(&s, m2, "points.changed", "evt_4").await.unwrap();
    emit(&s, m3, "member.erased", "evt_5").await.unwrap();
    assert!(e1 < e2 && e2 < e3, "the sequence grows");

    // The head of each (endpoint, member) queue, oldest first; an attempt counted.
    assert_eq!(
        claim(&s, "A", NOW).await,
        [
            claimed("all", "evt_1", 1),
            claimed("points", "evt_1", 1),
            claimed("all", "evt_4", 1),
            claimed("points", "evt_4", 1),
            claimed("all", "evt_5", 1),
        ]
    );
    // Leased, and their successors wait for them.
    assert!(claim(&s, "B", NOW).await.is_empty());

    let n = record(
        &s,
        "A",
        vec![
            ("all", "evt_1", None, None),
            ("points", "evt_1", Some("500 boom"), Some(NOW + 1_000)),
            ("all", "evt_4", Some("410 gone"), None),
            ("points", "evt_4", None, None),
        ],
        NOW,
    )
    .await;
    assert_eq!(n, 4);
    assert_eq!(
        record(&s, "B", vec![("all", "evt_5", None, None)], NOW).await,
        0,
        "only the lease holder records"
    );
    assert_eq!(states(&s, "all", "dead").await, ["evt_4"]);
    assert_eq!(states(&s, "all", "delivered").await, ["evt_1"]);

    // m1 on `all` moves on to evt_2; on `points` evt_1 waits for its retry, and evt_3 behind it.
    assert_eq!(claim(&s, "B", NOW).await, [claimed("all", "evt_2", 1)]);
    // The endpoint answers again: a retry parked for later is due at once.
    assert!(claim(&s, "B", NOW + 500).await.is_empty());
    assert_eq!(
        s.hurry_endpoint("points".into(), NOW + 500).await.unwrap(),
        1
    );
    assert_eq!(
        claim(&s, "B", NOW + 500).await,
        [claimed("points", "evt_1", 2)]
    );
    // A's lease on evt_5 runs out: another dispatcher takes it.
    assert_eq!(
        claim(&s, "C", NOW + LEASE).await,
        [claimed("all", "evt_2", 2), claimed("all", "evt_5", 2)]
    );
    assert_eq!(
        record(&s, "A", vec![("all", "evt_5", None, None)], NOW + LEASE).await,
        0,
        "a lease taken over is no longer recorded by its first holder"
    );

    // A paused endpoint keeps its queue and is not claimed.
    let mut paused = spec(&[EventType::PointsChanged]);
    paused.paused = true;
    let shown = s
        .update_endpoint("points".into(), paused)
        .await
        .unwrap()
        .unwrap();
    assert!(shown.paused && shown.secret.is_none());
    assert_eq!(shown.pending, 2, "evt_1 (leased by B) and evt_3");
    assert!(
        claim(&s, "D", NOW + 10 * LEASE)
            .await
            .iter()
            .all(|c| c.0 == "all")
    );

    // Replay: every dead one, or named events (delivered or dead; not pending).
    assert_eq!(
        s.replay("all".into(), None, NOW + 11 * LEASE)
            .await
            .unwrap(),
        Some(1)
    );
    assert!(states(&s, "all", "dead").await.is_empty());
    assert_eq!(
        s.replay(
            "all".into(),
            Some(vec!["evt_1".into(), "evt_2".into()]),
            NOW
        )
        .await
        .unwrap(),
        Some(1),
        "evt_1 was delivered; evt_2 is pending"
    );
    assert_eq!(s.replay("none".into(), None, NOW).await.unwrap(), None);
    let again = s
        .deliveries("all".into(), None, 0, 10)
        .await
        .unwrap()
        .unwrap();
    let first = again.iter().find(|d| d.event.id == "evt_1").unwrap();
    assert_eq!((first.attempts, first.delivered_at.as_deref()), (0, None));
    assert_eq!(first.event.member_id, m1);

    // Erasure forgets the member's events nothing waits for.
    let m = m1.clone();
    write(&*s, move |repo| {
        repo.record_outcomes("D", &[], NOW)?;
        repo.forget_member_events(&m)
    })
    .await
    .unwrap();
    assert_eq!(
        s.deliveries("all".into(), None, 0, 10)
            .await
            .unwrap()
            .unwrap()
            .iter()
            .filter(|d| d.event.member_id == m1)
            .count(),
        3,
        "evt_1, evt_2 and evt_3 are all still pending somewhere"
    );

    // The purge forgets delivered deliveries past retention, then events with none left.
    let c = claim(&s, "E", NOW + 20 * LEASE).await;
    assert!(c.contains(&claimed("all", "evt_4", 1)));
    let delivered: Vec<_> = c
        .iter()
        .map(|(e, ev, _)| (e.as_str(), ev.as_str(), None, None))
        .collect();
    assert_eq!(
        record(&s, "E", delivered, NOW + 20 * LEASE).await,
        c.len() as u64
    );
    assert!(s.delete_endpoint("points".into()).await.unwrap());
    assert!(!s.delete_endpoint("points".into()).await.unwrap());
    let purged = s.purge_webhooks(NOW + 20 * LEASE + 1, NOW).await.unwrap();
    assert!(purged >= c.len() as u64, "{purged} events purged");
    let left = s
        .deliveries("all".into(), None, 0, 10)
        .await
        .unwrap()
        .unwrap();
    assert!(
        left.iter()
            .all(|d| d.state != tessera_domain::api::DeliveryState::Delivered)
    );
}

pub async fn the_programme_s_changes_write_their_events(s: Backend) {
    use tessera_domain::api::{EventData, PointsKind};
    seeded(&s).await;
    let before = enrol(&s, 1).await;
    s.create_endpoint("all".into(), spec(&[]), NOW)
        .await
        .unwrap()
        .unwrap();
    let m = enrol(&s, 2).await;
    s.adjust_points(
        m.clone(),
        PointsAdjustment {
            points: 40,
            reason: "goodwill".into(),
        },
        NOW,
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    // A clip issues a coupon; a consent recorded at the counter; a challenge joined and
    // completed (each event told once: a repeated join is not).
    super::mutate(
        &s,
        &m,
        "key-clip-0001",
        serde_json::json!({"type": "clip_offer", "offer_id": "of-any"}),
    )
    .await;
    s.staff_consent(
        super::staff_record(
            "c-hook-1",
            &m,
            tessera_domain::consent::Purpose::MarketingOffers,
            tessera_domain::consent::Decision::Granted,
        ),
        NOW,
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    let rules: tessera_domain::rules::RuleSet = serde_json::from_value(serde_json::json!({
        "version": 1, "challenges": [{"id": "two-reviews", "title": "Two reviews",
        "opt_in": true, "window": {"type": "calendar_month"},
        "goal": {"type": "count", "target": 2, "filter": {"kinds": ["review_posted"]}},
        "reward": {"type": "points", "points": 100}}]}))
    .unwrap();
    s.put_challenge_rules(rules).await.unwrap();
    for key in ["key-join-0001", "key-join-0002"] {
        super::mutate(
            &s,
            &m,
            key,
            serde_json::json!({"type": "join_challenge", "challenge_id": "two-reviews",
                "joined_at": "2026-09-21T10:00:00Z"}),
        )
        .await;
    }
    let review = |id: &str, at_ms: i64| tessera_domain::rules::RuleEvent {
        event_id: id.into(),
        kind: tessera_domain::rules::RuleEventKind::ReviewPosted,
        at_ms,
        store_id: None,
        channel: None,
        amount_cents: 0,
        lines: Vec::new(),
    };
    s.ingest_rule_events(
        m.clone(),
        vec![
            review("rv-1", NOW - 7_200_000),
            review("rv-2", NOW - 3_600_000),
        ],
        NOW,
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    s.erase(m.clone(), NOW, "support".into())
        .await
        .unwrap()
        .unwrap();
    let events: Vec<_> = s
        .deliveries("all".into(), None, 0, 100)
        .await
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|d| (d.event.member_id, d.event.data))
        .collect();
    assert!(events.iter().all(|(member, _)| *member != before));
    assert!(
        events.contains(&(
            m.clone(),
            EventData::PointsChanged {
                kind: PointsKind::Adjust,
                points: 40,
                reason: "goodwill".into()
            }
        )),
        "{events:?}"
    );
    let types: Vec<&str> = events
        .iter()
        .map(|(_, d)| d.event_type().as_str())
        .collect();
    assert_eq!(
        types,
        [
            "member.enrolled",
            "points.changed",
            "coupon.issued",
            "consent.recorded",
            "challenge.joined",
            "points.changed",
            "challenge.completed",
            "member.erased",
        ],
        "{events:?}"
    );
    assert!(matches!(
        &events[2].1,
        EventData::CouponIssued { offer_id, origin, .. } if offer_id == "of-any" && origin == "clip"
    ));
    assert!(matches!(
        &events[6].1,
        EventData::ChallengeCompleted { challenge_id, completion: 1, points: 100, .. }
            if challenge_id == "two-reviews"
    ));
    assert_eq!(
        events.last(),
        Some(&(m.clone(), EventData::MemberErased {})),
        "the erasure is told last"
    );
}
