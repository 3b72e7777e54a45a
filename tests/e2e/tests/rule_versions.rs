//! Rules tried before they are published (issue #19): a dry run over a member's purchases shows
//! what another rule set would have given them, next to the rules in force, publishing nothing;
//! every published rule set is kept as a version, and a restore publishes an old one again as a
//! new version. Through the admin API of the real server, on either backend.

use reqwest::Method;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use tessera_e2e::{Server, admin, till_token};

fn buy(server: &Server, till: &str, card: &str, receipt: &str, lines: Value, total: u64) {
    let resp = Client::new()
        .post(format!("{}/v1/till/purchases", server.url()))
        .bearer_auth(till)
        .header("idempotency-key", tessera_e2e::raw::key())
        .json(
            &json!({"receipt": receipt, "card_number": card, "lines": lines, "total_cents": total}),
        )
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

fn rules(points_per_euro: u32, tea_bonus: Option<u32>, target: u32) -> Value {
    let bonuses = match tea_bonus {
        Some(extra) => json!([{"filter": {"categories": ["tea"]}, "extra_percent": extra}]),
        None => json!([]),
    };
    json!({
        "version": 1,
        "challenges": [{
            "id": "regular", "title": "Come back",
            "window": {"type": "rolling_days", "days": 30},
            "goal": {"type": "count", "target": target, "filter": {"kinds": ["purchase"]}},
            "reward": {"type": "points", "points": 50}
        }],
        "earning": {"points_per_euro": points_per_euro, "bonuses": bonuses}
    })
}

#[test]
fn a_dry_run_shows_what_a_rule_set_would_give_and_versions_can_be_restored() {
    let server = Server::start();
    let v1 = rules(1, None, 3);
    let (status, _) = admin(Method::PUT, &server, "/admin/v1/challenges", v1.clone());
    assert_eq!(status, 204);
    // As the server writes it back (defaults filled in).
    let (_, v1) = admin(Method::GET, &server, "/admin/v1/challenges", Value::Null);
    let enrolled = tessera_e2e::raw::enrolment(&server);
    let member = enrolled["member_id"].as_str().unwrap();
    let card = enrolled["card"]["card_number"].as_str().unwrap();
    let till = till_token(&server, "st-paris-01");
    let tea = json!([{"sku": "sencha", "category": "tea", "quantity": 1, "amount_cents": 3000},
                     {"sku": "mug", "category": "kitchen", "quantity": 1, "amount_cents": 1000}]);
    buy(&server, &till, card, "R-1", tea, 4000);
    let cup = json!([{"sku": "cup", "category": "kitchen", "quantity": 1, "amount_cents": 1500}]);
    buy(&server, &till, card, "R-2", cup, 1500);

    // Double on tea and two purchases to complete the challenge: 30 € of tea earn 60, not 30.
    let v2 = rules(1, Some(100), 2);
    let (status, run) = admin(
        Method::POST,
        &server,
        "/admin/v1/challenges/dry-run",
        json!({"member_id": member, "rules": v2}),
    );
    assert_eq!(status, 200, "{run}");
    let per = |k: &str| {
        run["purchases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[k].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(per("amount_cents"), [4000, 1500]);
    assert_eq!(per("points_in_force"), [40, 15]);
    assert_eq!(per("points_with_rules"), [70, 15]);
    assert_eq!(
        (
            run["points_in_force"].as_u64(),
            run["points_with_rules"].as_u64()
        ),
        (Some(55), Some(85))
    );
    let challenge = &run["challenges"][0];
    assert_eq!(challenge["challenge_id"], "regular");
    assert_eq!(
        (
            challenge["completions_in_force"].as_u64(),
            challenge["completions_with_rules"].as_u64()
        ),
        (Some(0), Some(1))
    );
    assert_eq!(
        (
            run["reward_points_in_force"].as_u64(),
            run["reward_points_with_rules"].as_u64()
        ),
        (Some(0), Some(50))
    );
    // Nothing was published or paid.
    let (_, now) = admin(Method::GET, &server, "/admin/v1/challenges", Value::Null);
    assert_eq!(now, v1);
    let me: Value = Client::new()
        .get(format!("{}/v1/me", server.url()))
        .bearer_auth(enrolled["tokens"]["access_token"].as_str().unwrap())
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["points"]["balance"], 55, "{me}");

    // Bad requests: typed problems.
    let (status, _) = admin(
        Method::POST,
        &server,
        "/admin/v1/challenges/dry-run",
        json!({"member_id": "m_nobody", "rules": rules(1, None, 2)}),
    );
    assert_eq!(status, 404);
    let (status, problem) = admin(
        Method::POST,
        &server,
        "/admin/v1/challenges/dry-run",
        json!({"member_id": member, "rules": rules(1, None, 0)}),
    );
    assert_eq!(status, 422, "{problem}");

    // Published versions are kept; a restore publishes an old one again.
    let (status, _) = admin(Method::PUT, &server, "/admin/v1/challenges", v2.clone());
    assert_eq!(status, 204);
    let (_, versions) = admin(
        Method::GET,
        &server,
        "/admin/v1/challenges/versions",
        Value::Null,
    );
    let versions = versions.as_array().unwrap().clone();
    assert_eq!(versions.len(), 2);
    let (first, second) = (
        versions[1]["version"].as_i64().unwrap(),
        versions[0]["version"].as_i64().unwrap(),
    );
    assert!(second > first);
    assert_eq!(versions[0]["published_by"], "operator");
    let (_, old) = admin(
        Method::GET,
        &server,
        &format!("/admin/v1/challenges/versions/{first}"),
        Value::Null,
    );
    assert_eq!(old, v1);
    let (status, restored) = admin(
        Method::POST,
        &server,
        &format!("/admin/v1/challenges/versions/{first}/restore"),
        Value::Null,
    );
    assert_eq!(status, 200, "{restored}");
    assert!(restored["version"].as_i64().unwrap() > second);
    let (_, now) = admin(Method::GET, &server, "/admin/v1/challenges", Value::Null);
    assert_eq!(now, v1, "version 1 is in force again");
    let (_, versions) = admin(
        Method::GET,
        &server,
        "/admin/v1/challenges/versions",
        Value::Null,
    );
    assert_eq!(versions.as_array().unwrap().len(), 3, "history is kept");
    assert_eq!(versions[0]["note"], format!("restored version {first}"));
    let (status, _) = admin(
        Method::POST,
        &server,
        "/admin/v1/challenges/versions/999999/restore",
        Value::Null,
    );
    assert_eq!(status, 404);
}
