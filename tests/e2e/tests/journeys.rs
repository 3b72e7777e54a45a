//! Journeys end to end: the operator sets them through the admin API (refused with the reason
//! when the server would not send them), a run finds the members, the server's FCM request
//! builder sends to a local receiver (the one fake: FCM is not reachable here), and the phone
//! shows what arrived, filled in for the member. Only members who consented get it, once.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::api::PushProvider;
use tessera_core::consent::{Channel, ConsentText, Decision, Purpose};
use tessera_core::privacy::ConsentChoice;
use tessera_core::push::PushDecision;
use tessera_e2e::receiver::{Behaviour, PushReceiver};
use tessera_e2e::{Server, admin, device, seed};
use tessera_server::ServerConfig;
use tessera_server::push::{FcmConfig, PushConfig};

fn member(
    server: &Server,
    name: &str,
    token: &str,
    consent: bool,
) -> (tempfile::TempDir, tessera_core::Tessera) {
    let dir = tempfile::tempdir().unwrap();
    let t = tessera_e2e::phone(dir.path().join("m.db"));
    t.enrol(&server.url(), name, device()).unwrap();
    assert!(t.set_push_token(PushProvider::Fcm, token).unwrap());
    if consent {
        t.record_consent(
            &[ConsentChoice {
                purpose: Purpose::MarketingOffers,
                channel: Channel::Push,
                decision: Decision::Granted,
            }],
            &ConsentText {
                version: "push-2026-12".into(),
                text: "Offers by push notification.".into(),
            },
        )
        .unwrap();
    }
    t.set_preferences(&tessera_core::preferences::Preferences {
        quiet_hours: None,
        ..t.preferences().unwrap()
    })
    .unwrap();
    assert_eq!(t.sync().unwrap().rejected, 0);
    (dir, t)
}

fn run(server: &Server) {
    let (status, run) = admin(Method::POST, server, "/admin/v1/journeys/runs", Value::Null);
    assert_eq!(status, 202, "{run}");
    let path = format!("/admin/v1/journeys/runs/{}", run["run"].as_str().unwrap());
    let started = Instant::now();
    loop {
        let (status, state) = admin(Method::GET, server, &path, Value::Null);
        assert_eq!(status, 200, "{state}");
        assert_ne!(state["state"], "failed");
        if state["state"] == "done" {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{state}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_welcome_journey_reaches_consenting_members_once_filled_in_for_each() {
    let receiver = PushReceiver::start(Behaviour::default());
    let config = ServerConfig {
        push: PushConfig {
            fcm: Some(FcmConfig {
                base_url: receiver.url.clone(),
                project_id: "tessera-test".into(),
                credential: std::sync::Arc::new(tessera_server::push::StaticToken(
                    "fcm-oauth-token".into(),
                )),
            }),
            apns: None,
        },
        ..ServerConfig::default()
    };
    let server = Server::start_with(config, Some(seed()));
    let offer = seed().offers[0].id.clone();
    let welcome = |title: &str| {
        json!({"max_per_member_per_week": 2, "cooldown_days": 30, "journeys": [
            {"kind": "welcome", "enabled": true, "offer_id": offer, "title": title,
             "body": "A gift for your first visit", "delay_minutes": 0}]})
    };

    // Refused, with the reason.
    for (bad, why) in [
        (welcome("Hello {first_name}"), "{first_name}"),
        (
            json!({"max_per_member_per_week": 2, "cooldown_days": 30, "journeys": [
                {"kind": "birthday", "enabled": true, "offer_id": "of-nowhere",
                 "title": "Happy birthday", "body": "A gift"}]}),
            "no offer",
        ),
        (
            json!({"max_per_member_per_week": 2, "cooldown_days": 30, "journeys": [
                {"kind": "lapsed", "enabled": true, "offer_id": offer, "segment": "nobody",
                 "title": "We miss you", "body": "Come back"}]}),
            "no segment",
        ),
        (
            json!({"max_per_member_per_week": 0, "cooldown_days": 30, "journeys": []}),
            "1 to 14",
        ),
    ] {
        let (status, problem) = admin(Method::PUT, &server, "/admin/v1/journeys", bad);
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["code"], "journey_settings_refused");
        assert!(
            problem["detail"].as_str().unwrap().contains(why),
            "{problem}"
        );
    }
    let (status, set) = admin(
        Method::PUT,
        &server,
        "/admin/v1/journeys",
        welcome("Welcome, {name}"),
    );
    assert_eq!(status, 200, "{set}");
    let (_, got) = admin(Method::GET, &server, "/admin/v1/journeys", Value::Null);
    assert_eq!(got, set);

    let (_a, chloe) = member(&server, "Chloé Martin", "fcm-token-chloe", true);
    let (_b, _silent) = member(&server, "Paul Durand", "fcm-token-paul", false);
    run(&server);
    assert_eq!(receiver.tokens(), ["fcm-token-chloe"]);
    // What FCM hands the app: the data map, shown by the phone filled in for its member.
    let data = receiver.bodies()[0]["message"]["data"].to_string();
    let now = jiff::Timestamp::now().as_millisecond();
    let PushDecision::Show { notification } = chloe.handle_push(&data, now).unwrap() else {
        panic!("not shown: {data}");
    };
    assert_eq!(notification.title, "Welcome, Chloé Martin");
    assert_eq!(notification.offer_id, offer);

    // Once: a second run sends nothing more.
    run(&server);
    assert_eq!(receiver.tokens().len(), 1);
    let (status, report) = admin(
        Method::GET,
        &server,
        "/admin/v1/journeys/report?days=7",
        Value::Null,
    );
    assert_eq!(status, 200, "{report}");
    let welcome = &report["journeys"][0];
    assert_eq!(welcome["kind"], "welcome");
    assert_eq!(
        (&welcome["entered"], &welcome["sent"], &welcome["skipped"]),
        (&json!(2), &json!(1), &json!(1))
    );
    assert_eq!(welcome["reasons"]["no_consent"], 1);
    assert_eq!(welcome["pushes"], 1);
    let (status, _) = admin(
        Method::GET,
        &server,
        "/admin/v1/journeys/report?days=0",
        Value::Null,
    );
    assert_eq!(status, 422);
}
