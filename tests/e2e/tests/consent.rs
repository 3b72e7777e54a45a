//! Consent and preferences against the real server: the gate every feature asks, withdrawal
//! offline, records from the store and the call centre, ordering, preference sync, typed errors,
//! export and erasure.

use std::collections::BTreeMap;

use reqwest::blocking::Client;
use serde_json::{Value, json};
use tessera_core::consent::{Channel, ConsentSource, ConsentText, Decision, Feature, Purpose};
use tessera_core::preferences::{NotificationRequest, NotificationVerdict, Preferences};
use tessera_core::privacy::ConsentChoice;
use tessera_core::{Error, SyncError, Tessera};
use tessera_e2e::rusqlite::Connection;
use tessera_e2e::{ADMIN_TOKEN, Server, device};
use tessera_server::storage::Storage;

fn invalid<T: std::fmt::Debug>(r: tessera_core::Result<T>) -> &'static str {
    match r {
        Err(Error::InvalidInput { field, .. }) => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

fn enrolled(server: &Server) -> (tempfile::TempDir, Tessera) {
    let dir = tempfile::tempdir().unwrap();
    let t = Tessera::open(dir.path().join("member.db")).unwrap();
    t.enrol(&server.url(), "Chloé Martin", device()).unwrap();
    // No quiet hours, so that notification checks do not depend on when the test runs.
    t.set_preferences(&Preferences {
        quiet_hours: None,
        ..t.preferences().unwrap()
    })
    .unwrap();
    (dir, t)
}

fn text() -> ConsentText {
    ConsentText {
        version: "consent-2026-11".into(),
        text: "We would like to send you offers. You can change your mind at any time.".into(),
    }
}

fn choose(t: &Tessera, pairs: &[(Purpose, Channel)], decision: Decision) {
    let choices: Vec<ConsentChoice> = pairs
        .iter()
        .map(|(purpose, channel)| ConsentChoice {
            purpose: *purpose,
            channel: *channel,
            decision,
        })
        .collect();
    t.record_consent(&choices, &text()).unwrap();
}

fn member_id(t: &Tessera) -> String {
    t.sync_status().unwrap().member_id.unwrap()
}

fn admin(server: &Server) -> (Client, String) {
    (Client::new(), server.url())
}

fn audience(server: &Server, purpose: &str, channel: &str) -> Vec<String> {
    let (http, url) = admin(server);
    let v: Value = http
        .get(format!("{url}/admin/v1/audience"))
        .query(&[("purpose", purpose), ("channel", channel)])
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    serde_json::from_value(v["members"].clone()).unwrap()
}

fn push() -> NotificationRequest {
    NotificationRequest {
        purpose: Purpose::MarketingOffers,
        channel: Channel::Push,
        categories: vec![],
    }
}

/// What each feature does when it runs, observed through the API that gates it.
fn feature_runs(t: &Tessera, feature: Feature) -> bool {
    let notify = |purpose, channel| {
        t.claim_notification(&NotificationRequest {
            purpose,
            channel,
            categories: vec![],
        })
        .unwrap()
            == NotificationVerdict::Send
    };
    let runs = match feature {
        // The plan the OS would register: empty without location consent.
        Feature::GeofenceMonitoring => {
            let paris = tessera_core::geo::Position {
                latitude: 48.8566,
                longitude: 2.3522,
            };
            !t.plan_geofences(paris, 20, &[]).unwrap().regions.is_empty()
        }
        Feature::GeolocatedNotifications => notify(Purpose::GeolocatedOffers, Channel::Push),
        Feature::PushOffers => notify(Purpose::MarketingOffers, Channel::Push),
        Feature::EmailOffers => notify(Purpose::MarketingOffers, Channel::Email),
        Feature::SmsOffers => notify(Purpose::MarketingOffers, Channel::Sms),
        Feature::InAppOffers => notify(Purpose::MarketingOffers, Channel::InApp),
        Feature::PersonalisedRanking => t.offers(100).unwrap().personalised,
        Feature::Analytics => t.track("offer_opened", BTreeMap::new()).unwrap(),
    };
    assert_eq!(
        runs,
        t.permits(feature),
        "{feature:?}: the gate and the feature agree"
    );
    runs
}

#[test]
fn every_gated_feature_stops_when_withdrawn_and_resumes_when_granted() {
    let server = Server::start();
    let (_dir, t) = enrolled(&server);
    t.sync().unwrap();
    for feature in Feature::ALL {
        assert!(!feature_runs(&t, feature), "{feature:?} is opt-in");
    }
    for feature in Feature::ALL {
        let needs = feature.requires();
        choose(&t, needs, Decision::Granted);
        assert!(feature_runs(&t, feature), "{feature:?} runs once granted");
        for (i, pair) in needs.iter().enumerate() {
            choose(&t, &[*pair], Decision::Withdrawn);
            assert!(
                !feature_runs(&t, feature),
                "{feature:?} stops without {pair:?}"
            );
            choose(&t, &[*pair], Decision::Granted);
            assert!(feature_runs(&t, feature), "{feature:?} resumes ({i})");
        }
        choose(&t, needs, Decision::Denied);
        assert!(!feature_runs(&t, feature));
    }
    // Everything reaches the server, in order, and the server derives the same state.
    let report = t.sync().unwrap();
    assert_eq!(report.rejected, 0, "{:?}", t.rejected_actions().unwrap());
    let (http, url) = admin(&server);
    let history: Vec<Value> = http
        .get(format!("{url}/admin/v1/members/{}/consents", member_id(&t)))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(history.len(), t.consent_history().unwrap().len());
    assert!(
        t.consent_history()
            .unwrap()
            .iter()
            .all(|r| r.recorded_at.is_some())
    );
    assert!(t.consent_state().unwrap().iter().all(|s| !s.allowed));
}

#[test]
fn a_withdrawal_takes_effect_offline_and_the_server_stops_targeting_after_sync() {
    let server = Server::start();
    let (_dir, t) = enrolled(&server);
    let me = member_id(&t);
    choose(
        &t,
        &[
            (Purpose::MarketingOffers, Channel::Push),
            (Purpose::Analytics, Channel::InApp),
        ],
        Decision::Granted,
    );
    t.sync().unwrap();
    assert_eq!(
        audience(&server, "marketing_offers", "push"),
        std::slice::from_ref(&me)
    );
    assert!(t.track("app_opened", BTreeMap::new()).unwrap());

    // Offline (the server is never called): withdrawn in one call, effective at once.
    let withdrawn = t.withdraw_all_consents(&text()).unwrap();
    assert_eq!(withdrawn.len(), 2);
    assert!(!t.permits(Feature::PushOffers));
    assert_eq!(
        t.claim_notification(&push()).unwrap(),
        NotificationVerdict::NoConsent {
            feature: Feature::PushOffers
        }
    );
    assert!(
        !t.track("app_opened", BTreeMap::new()).unwrap(),
        "dropped, not queued"
    );
    // Until it syncs the server still has the grant; after, never again.
    assert_eq!(
        audience(&server, "marketing_offers", "push"),
        std::slice::from_ref(&me)
    );
    let report = t.sync().unwrap();
    assert_eq!(
        (report.pushed, report.rejected),
        (3, 0),
        "1 usage event, 2 withdrawals"
    );
    assert!(audience(&server, "marketing_offers", "push").is_empty());
    assert!(audience(&server, "analytics", "in_app").is_empty());
    // A second withdraw-all has nothing left to withdraw.
    assert!(t.withdraw_all_consents(&text()).unwrap().is_empty());
}

#[test]
fn decisions_from_the_store_and_the_call_centre_reach_the_phone_and_the_latest_wins() {
    let server = Server::start();
    let (_dir, t) = enrolled(&server);
    let me = member_id(&t);
    let (http, url) = admin(&server);
    let sha = text().sha256();
    // At the counter, staff record an e-mail opt-in on the member's behalf.
    let stored: Value = http
        .post(format!("{url}/admin/v1/members/{me}/consents"))
        .bearer_auth(ADMIN_TOKEN)
        .json(
            &json!({"purpose": "marketing_offers", "channel": "email", "decision": "granted",
            "text_version": "counter-form-3", "text_sha256": sha, "source": "in_store",
            "recorded_by": "staff-lyon-07"}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(stored["recorded_by"], "staff-lyon-07");
    t.sync().unwrap();
    assert!(
        t.permits(Feature::EmailOffers),
        "the phone learns it at the next sync"
    );
    let record = t
        .consent_history()
        .unwrap()
        .into_iter()
        .find(|r| r.channel == Channel::Email)
        .unwrap();
    assert_eq!(record.source, ConsentSource::InStore);
    assert_eq!(record.text_version, "counter-form-3");

    // The phone grants push offline at 10:00 (its clock); the member calls the call centre and
    // withdraws it: the call centre's decision is later, so it wins wherever it arrives first.
    choose(
        &t,
        &[(Purpose::MarketingOffers, Channel::Push)],
        Decision::Granted,
    );
    std::thread::sleep(std::time::Duration::from_millis(50));
    let withdrawn = http
        .post(format!("{url}/admin/v1/members/{me}/consents"))
        .bearer_auth(ADMIN_TOKEN)
        .json(
            &json!({"purpose": "marketing_offers", "channel": "push", "decision": "withdrawn",
            "text_version": "call-script-2", "text_sha256": sha, "source": "call_centre",
            "recorded_by": "agent-12"}),
        )
        .send()
        .unwrap();
    assert_eq!(withdrawn.status(), 201);
    assert!(t.permits(Feature::PushOffers), "not known on the phone yet");
    t.sync().unwrap();
    assert!(
        !t.permits(Feature::PushOffers),
        "the later decision wins on the phone"
    );
    assert!(audience(&server, "marketing_offers", "push").is_empty());
    assert_eq!(audience(&server, "marketing_offers", "email"), [me]);

    // A paper form signed before the app's grant arrives late: history, not the state.
    let old: Value = http
        .post(format!("{url}/admin/v1/members/{}/consents", member_id(&t)))
        .bearer_auth(ADMIN_TOKEN)
        .json(
            &json!({"purpose": "marketing_offers", "channel": "email", "decision": "denied",
            "text_version": "paper-1", "text_sha256": sha, "source": "in_store",
            "recorded_by": "staff-lyon-07", "decided_at": "2026-01-05T10:00:00Z"}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(old["effective_at"], "2026-01-05T10:00:00Z");
    t.sync().unwrap();
    assert!(t.permits(Feature::EmailOffers));
    assert!(
        t.consent_history()
            .unwrap()
            .iter()
            .any(|r| r.text_version == "paper-1")
    );
}

#[test]
fn preferences_sync_both_ways_field_by_field() {
    let server = Server::start();
    let (_dir, t) = enrolled(&server);
    let me = member_id(&t);
    let mine = Preferences {
        interests: vec!["tea".into(), "pastry".into()],
        language: "fr-FR".into(),
        timezone: "Europe/Paris".into(),
        quiet_hours: None,
        ..Preferences::default()
    };
    t.set_preferences(&mine).unwrap();
    t.sync().unwrap();
    let on_server: Value = Client::new()
        .get(format!("{}/admin/v1/members/{me}/export", server.url()))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        on_server["member"]["preferences"]["interests"],
        json!(["tea", "pastry"])
    );
    assert_eq!(on_server["member"]["preferences"]["language"], "fr-FR");

    // The website changes the language; the phone changes its interests before it syncs.
    let web = tessera_core::api::Mutation::SetPreferences {
        changes: vec![tessera_core::preferences::PreferenceChange::Language {
            value: "en-GB".into(),
        }],
    };
    server
        .block_on(server.storage.apply_mutation(
            me.clone(),
            "web-change-0001".into(),
            "web".into(),
            web,
            jiff::Timestamp::now().as_millisecond(),
        ))
        .unwrap();
    t.set_preferences(&Preferences {
        interests: vec!["tea".into()],
        ..t.preferences().unwrap()
    })
    .unwrap();
    t.sync().unwrap();
    let merged = t.preferences().unwrap();
    assert_eq!(merged.interests, ["tea"], "the phone's own change");
    assert_eq!(merged.language, "en-GB", "the website's change");

    // The tea drinker is not offered coffee, neither as a notification nor in the list.
    choose(
        &t,
        &[(Purpose::MarketingOffers, Channel::Push)],
        Decision::Granted,
    );
    let coffee = NotificationRequest {
        categories: vec!["coffee".into()],
        ..push()
    };
    assert_eq!(
        t.claim_notification(&coffee).unwrap(),
        NotificationVerdict::NotOfInterest
    );
    let offers = t.offers(200).unwrap().offers;
    assert!(!offers.is_empty());
    assert!(
        offers
            .iter()
            .all(|o| o.categories.is_empty() || o.categories.iter().any(|c| c == "tea"))
    );
}

#[test]
fn frequency_caps_count_what_was_shown() {
    let server = Server::start();
    let (_dir, t) = enrolled(&server);
    choose(
        &t,
        &[(Purpose::MarketingOffers, Channel::Push)],
        Decision::Granted,
    );
    t.set_preferences(&Preferences {
        caps: vec![tessera_core::preferences::FrequencyCap {
            channel: Channel::Push,
            per_day: Some(2),
            per_week: None,
        }],
        ..t.preferences().unwrap()
    })
    .unwrap();
    assert_eq!(
        t.claim_notification(&push()).unwrap(),
        NotificationVerdict::Send
    );
    assert_eq!(
        t.claim_notification(&push()).unwrap(),
        NotificationVerdict::Send
    );
    assert_eq!(
        t.claim_notification(&push()).unwrap(),
        NotificationVerdict::CapReached { per_day: true }
    );
}

#[test]
fn bad_consent_input_is_typed_and_nothing_is_recorded_twice() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let t = Tessera::open(dir.path().join("m.db")).unwrap();
    let grant = [ConsentChoice {
        purpose: Purpose::Analytics,
        channel: Channel::InApp,
        decision: Decision::Granted,
    }];
    assert!(matches!(
        t.record_consent(&grant, &text()),
        Err(Error::NotEnrolled)
    ));
    t.enrol(&server.url(), "Eve", device()).unwrap();
    assert_eq!(invalid(t.record_consent(&[], &text())), "choices");
    assert_eq!(
        invalid(t.record_consent(&[grant[0].clone(), grant[0].clone()], &text())),
        "choices"
    );
    let blank = ConsentText {
        version: "v1".into(),
        text: "  ".into(),
    };
    assert_eq!(invalid(t.record_consent(&grant, &blank)), "text.text");
    let bad_version = ConsentText {
        version: "version one".into(),
        ..text()
    };
    assert_eq!(
        invalid(t.record_consent(&grant, &bad_version)),
        "text.version"
    );
    assert!(t.consent_history().unwrap().is_empty(), "nothing recorded");
    assert_eq!(
        invalid(t.set_preferences(&Preferences {
            timezone: "Nowhere/Else".into(),
            ..Preferences::default()
        })),
        "preferences.timezone"
    );

    // The ledger is append-only even to someone holding the file.
    let records = t.record_consent(&grant, &text()).unwrap();
    let conn = Connection::open(t.path()).unwrap();
    assert!(
        conn.execute("UPDATE consent_record SET decision = 'denied'", [])
            .is_err()
    );
    assert!(conn.execute("DELETE FROM consent_record", []).is_err());
    drop(conn);

    // The server: another member's record, a clock far ahead, a reused record id, a repeat.
    t.sync().unwrap();
    let token: String = Connection::open(t.path())
        .unwrap()
        .query_row("SELECT access_token FROM session", [], |r| r.get(0))
        .unwrap();
    let http = Client::new();
    let send = |key: &str, record: &Value| {
        let resp = http
            .post(format!("{}/v1/mutations", server.url()))
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .json(&json!({"type": "record_consent", "record": record}))
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().unwrap();
        (status, body["code"].as_str().unwrap_or("").to_owned())
    };
    let mut record = serde_json::to_value(&records[0]).unwrap();
    record["recorded_at"] = Value::Null;
    assert_eq!(
        send("repeat-key-0001", &record),
        (200, String::new()),
        "a repeat is a no-op"
    );
    let mut other = record.clone();
    other["member_id"] = json!("m_someone_else");
    assert_eq!(send("other-key-0001", &other), (403, "wrong_member".into()));
    let mut future = record.clone();
    future["record_id"] = json!("c-future");
    future["effective_at"] = json!("2099-01-01T00:00:00Z");
    assert_eq!(send("future-key-0001", &future), (422, "clock_skew".into()));
    let mut changed = record.clone();
    changed["decision"] = json!("denied");
    assert_eq!(
        send("reuse-key-0001", &changed),
        (422, "record_id_reused".into())
    );
    let mut unknown = record.clone();
    unknown["purpose"] = json!("telepathy");
    assert_eq!(
        send("unknown-key-0001", &unknown),
        (400, "invalid_body".into())
    );
    // serde would read a numeric tag as a variant index; the server refuses it.
    let numeric = http
        .post(format!("{}/v1/mutations", server.url()))
        .bearer_auth(&token)
        .header("idempotency-key", "numeric-key-0001")
        .json(&json!({"type": 2, "record": record}))
        .send()
        .unwrap();
    assert_eq!(numeric.status(), 400);
    let history: Vec<Value> = http
        .get(format!(
            "{}/admin/v1/members/{}/consents",
            server.url(),
            member_id(&t)
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(history.len(), 1, "recorded once");

    // Staff must name themselves; the app screen is the device's; unknown members are 404.
    let staff = |body: Value, member: &str| {
        http.post(format!(
            "{}/admin/v1/members/{member}/consents",
            server.url()
        ))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .unwrap()
        .status()
        .as_u16()
    };
    let base = json!({"purpose": "analytics", "channel": "email", "decision": "granted",
        "text_version": "v1", "text_sha256": text().sha256(), "source": "in_store"});
    let me = member_id(&t);
    assert_eq!(staff(base.clone(), &me), 422);
    let mut app = base.clone();
    app["source"] = json!("app_screen");
    assert_eq!(staff(app, &me), 422);
    let mut named = base.clone();
    named["recorded_by"] = json!("staff-1");
    assert_eq!(staff(named.clone(), "m_nobody"), 404);
    assert_eq!(staff(named, &me), 201);
}

#[test]
fn a_device_clock_that_goes_back_keeps_the_members_order() {
    let server = Server::start();
    let (_dir, t) = enrolled(&server);
    // The last record was given an instant a minute ahead (say the clock was then set back).
    let ahead = jiff::Timestamp::now().as_millisecond() + 60_000;
    Connection::open(t.path())
        .unwrap()
        .execute("UPDATE sync_state SET consent_clock_ms = ?1", [ahead])
        .unwrap();
    choose(
        &t,
        &[(Purpose::Analytics, Channel::InApp)],
        Decision::Granted,
    );
    choose(
        &t,
        &[(Purpose::Analytics, Channel::InApp)],
        Decision::Withdrawn,
    );
    let history = t.consent_history().unwrap();
    assert_eq!(history.len(), 2);
    // Compared as instants: RFC 3339 text with variable fractions does not sort as time.
    let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    assert!(at(&history[0].effective_at) < at(&history[1].effective_at));
    assert_eq!(history[1].decision, Decision::Withdrawn);
    assert!(!t.permits(Feature::Analytics));
    t.sync().unwrap();
    assert!(
        !t.permits(Feature::Analytics),
        "the server orders them the same way"
    );
    assert!(audience(&server, "analytics", "in_app").is_empty());
}

#[test]
fn export_holds_everything_and_erasure_forgets_the_member_on_both_sides() {
    let server = Server::start();
    let (dir, t) = enrolled(&server);
    let me = member_id(&t);
    let card = t.card().unwrap().card_number;
    choose(
        &t,
        &[
            (Purpose::MarketingOffers, Channel::Email),
            (Purpose::Analytics, Channel::InApp),
        ],
        Decision::Granted,
    );
    t.record_event(
        tessera_core::EventKind::StoreVisit,
        Some("st-paris-01".into()),
        BTreeMap::new(),
    )
    .unwrap();
    t.track("offer_opened", BTreeMap::new()).unwrap();
    t.sync().unwrap();
    t.record_event(tessera_core::EventKind::AppOpened, None, BTreeMap::new())
        .unwrap();

    let export: Value = serde_json::from_str(&t.export_my_data().unwrap()).unwrap();
    assert_eq!(export["server"]["member"]["card_number"], card.as_str());
    assert_eq!(export["server"]["events"].as_array().unwrap().len(), 1);
    assert_eq!(export["server"]["analytics"].as_array().unwrap().len(), 1);
    assert_eq!(
        export["server"]["member"]["consents"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(export["server"]["devices"].as_array().unwrap().len(), 1);
    assert_eq!(
        export["device"]["pending_actions"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "the unsent visit"
    );
    assert_eq!(
        export["device"]["consent_records"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let text = export.to_string();
    assert!(!text.contains("access_token") && !text.contains("refresh_token"));

    let receipt = t.erase_member().unwrap();
    assert_eq!(receipt.consent_records_anonymised, 2);
    // The phone: a fresh, empty database in the same place.
    assert!(matches!(t.card(), Err(Error::NotEnrolled)));
    assert!(!t.sync_status().unwrap().enrolled);
    assert!(t.consent_history().unwrap().is_empty());
    assert_eq!(t.catalog_summary().unwrap().stores, 0);
    let conn = Connection::open(dir.path().join("member.db")).unwrap();
    let rows: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM consent_record) + (SELECT count(*) FROM outbox)
                  + (SELECT count(*) FROM activity) + (SELECT count(*) FROM session)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 0);
    // The server: nothing under the member, no audience, the consent proof kept detached.
    let http = Client::new();
    for path in [
        format!("/admin/v1/members/{me}/export"),
        format!("/admin/v1/members/{me}/consents"),
    ] {
        let status = http
            .get(format!("{}{path}", server.url()))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .unwrap()
            .status();
        assert_eq!(status, 404, "{path}");
    }
    assert!(audience(&server, "marketing_offers", "email").is_empty());
    assert!(server.event_counts(&me).is_empty());
    let (kept, linked): (i64, i64) = server
        .storage
        .with_connection(|c| {
            c.query_row(
                "SELECT count(*), count(DISTINCT member_id) FROM consent_record
                 WHERE member_id LIKE 'erased:%'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .unwrap();
    assert_eq!(
        (kept, linked),
        (2, 2),
        "kept, and not linkable to each other"
    );
    // The erased device can do nothing more; a second erasure is typed.
    assert!(matches!(t.erase_member(), Err(SyncError::NotEnrolled)));
    // The member can come back as a new member on the same phone.
    t.enrol(&server.url(), "Chloé Martin", device()).unwrap();
    assert_ne!(member_id(&t), me);
}
