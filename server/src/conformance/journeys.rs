//! Journeys find their members once per occurrence, and each due entry is sent once or given up
//! by the member's policy: consent, a device, quiet hours (waited out), the programme's cap.

use serde_json::json;
use tessera_domain::consent::{Decision, Purpose};
use tessera_domain::journeys::{Journey, JourneyKind, JourneySettings};
use tessera_domain::loyalty::{LoyaltyRules, TierRule};

use super::money::{purchase, till, till_op};
use super::{Backend, DAY, NOW, answer, enrol, mutate, seeded};
use crate::service::Services;
use crate::service::journeys::{JOURNEYS_JOB, JourneySend, JourneyServices};

fn journey(kind: JourneyKind, title: &str, body: &str) -> Journey {
    Journey {
        kind,
        enabled: true,
        offer_id: "of-any".into(),
        title: title.into(),
        body: body.into(),
        days_before: 14,
        delay_minutes: 0,
        segment: None,
    }
}

pub async fn journeys_enter_once_and_send_within_the_member_s_policy(s: Backend) {
    seeded(&s).await;
    let mut m = vec![];
    for n in 1..=4 {
        m.push(enrol(&s, n).await);
    }
    // Points valid 10 days; Silver at 50 qualifying points counted over a day, held 5 days.
    let rules = LoyaltyRules {
        points_validity_days: 10,
        tiers: vec![
            TierRule {
                name: "Member".into(),
                threshold: 0,
                multiplier_percent: 100,
            },
            TierRule {
                name: "Silver".into(),
                threshold: 50,
                multiplier_percent: 100,
            },
        ],
        tier_window_days: 1,
        tier_hold_days: 5,
        ..LoyaltyRules::default()
    };
    assert!(
        s.put_loyalty_rules(rules, "operator".into(), String::new(), NOW)
            .await
            .unwrap()
            .is_some()
    );
    for (n, id) in [(1, &m[0]), (2, &m[1]), (4, &m[3])] {
        s.staff_consent(
            super::members::staff_record(
                &format!("c-j-{n}"),
                id,
                Purpose::MarketingOffers,
                Decision::Granted,
            ),
            NOW,
        )
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    }
    for n in [1, 2] {
        let token = json!({"type": "set_push_token", "device_id": format!("d-{n}"),
            "provider": "fcm", "token": format!("fcm-token-{n}")});
        let key = format!("key-j-token-{n}");
        assert_eq!(
            answer(&mutate(&s, &m[n - 1], &key, token).await).status,
            200
        );
    }
    // Member 1: no quiet hours. Member 2: quiet from 14:00 to 16:00 UTC.
    let quiet = |value: serde_json::Value| json!({"type": "set_preferences", "changes": [{"field": "quiet_hours", "value": value}]});
    mutate(&s, &m[0], "key-j-prefs-1", quiet(json!(null))).await;
    mutate(
        &s,
        &m[1],
        "key-j-prefs-2",
        quiet(json!({"start": "14:00", "end": "16:00"})),
    )
    .await;
    // Member 1 buys 60 €: Silver, 60 points expiring in 10 days.
    let t = till(&s, "st-a", 1).await;
    till_op(&s, &t, "key-j-buy-1", purchase("R-J-1", "CARD-1", 6_000)).await;
    // T: the next day at 14:30 UTC. Members 2, 3 and 4 were born on that day.
    let at = (NOW.div_euclid(DAY) + 1) * DAY;
    let t0 = at + 14 * 3_600_000 + 1_800_000;
    for id in &m[1..] {
        assert!(
            s.set_birthday(id.clone(), Some("09-22".into()))
                .await
                .unwrap()
        );
    }

    let mut birthday = journey(
        JourneyKind::Birthday,
        "Happy birthday, {name}",
        "A gift for you",
    );
    birthday.days_before = 0;
    let settings = JourneySettings {
        journeys: vec![
            birthday,
            journey(
                JourneyKind::PointsExpiring,
                "{expiring_points} points expire",
                "Use them by {expires_on}",
            ),
            journey(
                JourneyKind::TierDropping,
                "Keep {tier}",
                "{points_to_keep} points to go by {review_on}",
            ),
        ],
        max_per_member_per_week: 1,
        cooldown_days: 30,
    };
    s.put_journey_settings(settings, NOW).await.unwrap();

    // Found once per occurrence: the birthdays of 2, 3, 4; member 1's points and tier.
    assert_eq!(s.enter_journeys(t0).await.unwrap(), 5);
    assert_eq!(s.enter_journeys(t0 + 3_600_000).await.unwrap(), 0);

    assert!(
        s.schedule_job(JOURNEYS_JOB.into(), "j-1".into(), t0)
            .await
            .unwrap()
    );
    let lease = 365 * DAY;
    let job = s
        .claim_job("worker-j".into(), t0, lease)
        .await
        .unwrap()
        .unwrap();
    let batch = |now: i64| {
        let s = s.clone();
        async move {
            s.journey_batch(job.id, "worker-j".into(), lease, 100, now)
                .await
                .unwrap()
                .expect("the job is the worker's")
        }
    };
    let first: Vec<JourneySend> = batch(t0).await;
    // Member 1 gets one of its two (the programme's cap is one a week); member 2 is in its
    // quiet hours; 3 gave no consent; 4 has no device.
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].entry.member_id, m[0]);
    assert_eq!(first[0].pushes.len(), 1);
    let push = &first[0].pushes[0];
    assert_eq!(push.device_token, "fcm-token-1");
    // Due together, taken in the journeys' order: the points first.
    assert_eq!(push.payload.title.as_deref(), Some("60 points expire"));
    push.payload.validate().unwrap();
    assert!(batch(t0).await.is_empty(), "nothing is sent twice");
    let report = s.journey_report(NOW).await.unwrap();
    let counts = |kind: &str| {
        report
            .journeys
            .iter()
            .find(|c| c.kind == kind)
            .unwrap()
            .clone()
    };
    let birthday = counts("birthday");
    assert_eq!(
        (
            birthday.entered,
            birthday.sent,
            birthday.waiting,
            birthday.skipped
        ),
        (3, 0, 1, 2)
    );
    assert_eq!(birthday.reasons["no_consent"], 1);
    assert_eq!(birthday.reasons["no_device"], 1);
    assert_eq!(birthday.reasons["quiet_hours"], 1);
    let (expiring, tier) = (counts("points_expiring"), counts("tier_dropping"));
    assert_eq!(expiring.sent + tier.sent, 1);
    assert_eq!(expiring.waiting + tier.waiting, 1);
    assert!(!counts("welcome").enabled);

    // Quiet hours end at 16:00: member 2's birthday goes then, filled in.
    assert!(batch(at + 15 * 3_600_000).await.is_empty());
    let later = batch(at + 16 * 3_600_000).await;
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].entry.member_id, m[1]);
    assert_eq!(
        later[0].pushes[0].payload.title.as_deref(),
        Some("Happy birthday, Member 2")
    );
    // A push the service refused is counted against its entry.
    s.record_journey_pushes(vec![(later[0].entry.clone(), 1)], 0, at + 16 * 3_600_000)
        .await
        .unwrap();
    assert_eq!(
        s.journey_report(NOW).await.unwrap().journeys[1].failed_pushes,
        1
    );

    // Member 1's tier journey waits out the programme's cap, and by then the tier has been
    // reviewed (down to Member): the trigger no longer holds, so it is given up.
    assert!(batch(t0 + 6 * DAY).await.is_empty());
    assert!(batch(t0 + 7 * DAY + 1).await.is_empty());
    let report = s.journey_report(NOW).await.unwrap();
    let tier = report.journeys.iter().find(|c| c.kind == "tier_dropping");
    assert_eq!(tier.unwrap().reasons.get("resolved"), Some(&1));

    // The welcome, on the members' own enrolment (the server's clock): due after its delay.
    let now = jiff::Timestamp::now().as_millisecond();
    let mut welcome = journey(JourneyKind::Welcome, "Welcome, {name}", "Your first gift");
    welcome.delay_minutes = 10;
    s.put_journey_settings(
        JourneySettings {
            journeys: vec![welcome],
            ..JourneySettings::default()
        },
        now,
    )
    .await
    .unwrap();
    assert_eq!(s.enter_journeys(now).await.unwrap(), 4);
    assert!(batch(now).await.is_empty());
    let at = now + 11 * 60_000;
    let welcomed = batch(at).await;
    // Members 1 and 2 (3 gave no consent, 4 has no device), unless 2 is in its quiet hours.
    let hour = at.rem_euclid(DAY) / 3_600_000;
    let expected: Vec<&str> = if (14..16).contains(&hour) {
        vec![&m[0]]
    } else {
        vec![&m[0], &m[1]]
    };
    let mut got: Vec<&str> = welcomed
        .iter()
        .map(|w| w.entry.member_id.as_str())
        .collect();
    got.sort();
    assert_eq!(got, expected);
    // Erased: the member's entries go with them.
    let before = s.journey_report(NOW).await.unwrap().journeys[0].entered;
    s.erase(m[3].clone(), now, "support-1".into())
        .await
        .unwrap();
    assert_eq!(
        s.journey_report(NOW).await.unwrap().journeys[0].entered,
        before - 1
    );
}
