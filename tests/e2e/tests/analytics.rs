//! Analytics through the admin API of the real server (issue #19): settings checked with typed problems; purchases posted by a till, a run asked for and
//! followed, the report and members' scores read back; campaigns may name a segment only if it
//! exists.

use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use tessera_e2e::{Server, admin, till_token};

fn buy(server: &Server, till: &str, card: &str, receipt: &str, cents: u64, days_ago: i64) {
    let at = jiff::Timestamp::now().as_millisecond() - days_ago * 86_400_000;
    let resp = Client::new()
        .post(format!("{}/v1/till/purchases", server.url()))
        .bearer_auth(till)
        .header("idempotency-key", tessera_e2e::raw::key())
        .json(&json!({
            "receipt": receipt,
            "card_number": card,
            "lines": [{"sku": "sencha", "category": "tea", "quantity": 1, "amount_cents": cents}],
            "total_cents": cents,
            "occurred_offline_at": tessera_core::rfc3339_ms(at),
        }))
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    assert_eq!(status, 200, "{}", resp.text().unwrap());
}

fn enrol(server: &Server) -> (String, String) {
    let v = tessera_e2e::raw::enrolment(server);
    (
        v["member_id"].as_str().unwrap().to_owned(),
        v["card"]["card_number"].as_str().unwrap().to_owned(),
    )
}

fn run(server: &Server) -> Value {
    let (status, run) = admin(
        Method::POST,
        server,
        "/admin/v1/analytics/runs",
        Value::Null,
    );
    assert_eq!(status, 202, "{run}");
    let path = format!("/admin/v1/analytics/runs/{}", run["run"].as_str().unwrap());
    let started = Instant::now();
    loop {
        let (status, state) = admin(Method::GET, server, &path, Value::Null);
        assert_eq!(status, 200, "{state}");
        assert_ne!(state["state"], "failed");
        if state["state"] == "done" {
            return state;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{state}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_run_reads_the_tills_and_answers_the_report_and_each_member() {
    // The day's run is queued when the server starts: the report may exist already.
    let server = Server::start();

    // Settings the server will not use.
    let (status, defaults) = admin(
        Method::GET,
        &server,
        "/admin/v1/analytics/settings",
        Value::Null,
    );
    assert_eq!(status, 200);
    assert_eq!(defaults["segments"][0]["name"], "vip");
    for (bad, why) in [
        (json!([{"name": "everyone"}]), "no condition"),
        (
            json!([{"name": "Big Spenders", "spend_over_cents": 1}]),
            "1–40 characters",
        ),
        (
            json!([{"name": "a", "purchases_over": 1}, {"name": "a", "purchases_over": 2}]),
            "twice",
        ),
    ] {
        let mut settings = defaults.clone();
        settings["segments"] = bad;
        let (status, problem) = admin(
            Method::PUT,
            &server,
            "/admin/v1/analytics/settings",
            settings,
        );
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["code"], "analytics_settings_refused");
        assert!(
            problem["detail"].as_str().unwrap().contains(why),
            "{problem}"
        );
    }
    let mut settings = defaults.clone();
    settings["churn_horizon_days"] = json!(7);
    let (status, problem) = admin(
        Method::PUT,
        &server,
        "/admin/v1/analytics/settings",
        settings,
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("analytics_settings_refused"))
    );
    let mut settings = defaults.clone();
    settings["segments"] = json!([{"name": "regulars", "purchases_over": 1, "window_days": 60}]);
    let (status, _) = admin(
        Method::PUT,
        &server,
        "/admin/v1/analytics/settings",
        settings.clone(),
    );
    assert_eq!(status, 200);

    let till = till_token(&server, "st-paris-01");
    let (a, card_a) = enrol(&server);
    let (b, card_b) = enrol(&server);
    let (c, _) = enrol(&server);
    buy(&server, &till, &card_a, "R-1", 4_000, 6);
    buy(&server, &till, &card_a, "R-2", 2_500, 3);
    buy(&server, &till, &card_a, "R-3", 1_500, 0);
    buy(&server, &till, &card_b, "R-4", 9_000, 0);

    run(&server);
    let (status, report) = admin(Method::GET, &server, "/admin/v1/analytics", Value::Null);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["settings"], settings);
    let figures = |k: &str| report[k].as_u64().unwrap();
    assert_eq!(
        (figures("members"), figures("buyers"), figures("active_30")),
        (3, 2, 2)
    );
    assert_eq!(
        report["segments"],
        json!([{"name": "regulars", "members": 1}])
    );
    assert_eq!(report["retention"].as_array().unwrap().len(), 12);
    assert!(report["churn"].is_null());
    assert!(
        report["churn_note"]
            .as_str()
            .unwrap()
            .contains("too little history"),
        "{report}"
    );
    assert_eq!(report["clv"]["average_basket_cents"], 17_000.0 / 4.0);

    let score = |m: &str| {
        admin(
            Method::GET,
            &server,
            &format!("/admin/v1/analytics/members/{m}"),
            Value::Null,
        )
    };
    let (status, sa) = score(&a);
    assert_eq!(status, 200);
    assert_eq!(
        (sa["purchases"].as_u64(), sa["spend_cents"].as_i64()),
        (Some(3), Some(8_000))
    );
    assert_eq!(
        (sa["recency_days"].as_u64(), sa["segments"].clone()),
        (Some(1), json!(["regulars"]))
    );
    let (_, sb) = score(&b);
    assert_eq!(
        (sb["purchases"].as_u64(), sb["m"].as_u64()),
        (Some(1), Some(4))
    );
    let (_, sc) = score(&c);
    assert_eq!(
        (sc["rfm_class"].as_str(), sc["r"].as_u64()),
        (Some("no_purchase"), Some(0))
    );
    assert_eq!(score("m_nobody").0, 404);
    assert_eq!(
        admin(
            Method::GET,
            &server,
            "/admin/v1/analytics/runs/now-1",
            Value::Null
        )
        .0,
        404
    );

    // Campaigns name segments that exist (or RFM classes).
    let offer = serde_json::to_value(&tessera_e2e::seed().offers[0]).unwrap();
    let campaign = |id: &str, segments: Value| {
        json!({"id": id, "offer": offer, "expires_at": "2099-01-01T00:00:00Z",
            "title": "For our regulars", "audience": {"analytics_segments": segments}})
    };
    for bad in [
        json!(["nobody"]),
        json!(["rfm:vip"]),
        json!(["RFM:champions"]),
    ] {
        let (status, problem) = admin(
            Method::POST,
            &server,
            "/admin/v1/campaigns",
            campaign("c-bad", bad),
        );
        assert_eq!(status, 422, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("no segment"),
            "{problem}"
        );
    }
    let report = tessera_e2e::run_campaign(
        &server,
        &campaign("c-1", json!(["regulars", "rfm:promising"])),
    );
    assert_eq!(report["state"], "done");

    // Scheduled: queued until then; never after it expires.
    let mut later = campaign("c-later", json!(["regulars"]));
    later["send_at"] = json!(tessera_core::rfc3339_ms(
        jiff::Timestamp::now().as_millisecond() + 3_600_000
    ));
    let (status, report) = admin(Method::POST, &server, "/admin/v1/campaigns", later.clone());
    assert_eq!((status, report["state"].as_str()), (202, Some("queued")));
    std::thread::sleep(Duration::from_millis(300));
    let (_, report) = admin(
        Method::GET,
        &server,
        "/admin/v1/campaigns/c-later",
        Value::Null,
    );
    assert_eq!(report["state"], "queued", "not before its time");
    later["id"] = json!("c-too-late");
    later["send_at"] = json!("2100-01-01T00:00:00Z");
    let (status, problem) = admin(Method::POST, &server, "/admin/v1/campaigns", later);
    assert_eq!(status, 422);
    assert!(
        problem["detail"].as_str().unwrap().contains("send_at"),
        "{problem}"
    );
}
