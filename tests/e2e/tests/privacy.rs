//! Consent input refused with typed errors and nothing recorded twice; the member's export and
//! erasure on both sides, against the real server.

use std::collections::BTreeMap;

use reqwest::blocking::Client;
use serde_json::{Value, json};
use tessera_core::consent::{Channel, ConsentText, Decision, Purpose};
use tessera_core::preferences::Preferences;
use tessera_core::privacy::ConsentChoice;
use tessera_core::{Error, SyncError};
use tessera_e2e::consent::*;
use tessera_e2e::rusqlite::Connection;
use tessera_e2e::{ADMIN_TOKEN, Server, device};

#[test]
fn bad_consent_input_is_typed_and_nothing_is_recorded_twice() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let t = tessera_e2e::phone(dir.path().join("m.db"));
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
    let counts = server.integers(
        "SELECT count(*), count(DISTINCT member_id) FROM consent_record
         WHERE member_id LIKE 'erased:%'",
    );
    let (kept, linked) = (counts[0], counts[1]);
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
