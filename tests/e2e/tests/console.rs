//! The merchant console against the real server (issue #19): staff accounts created by the
//! operator sign in with a form; every console route refuses the roles that may not use it (and
//! sends anonymous visitors to the sign-in page); a form without the session's CSRF token, or
//! sent from another site, is refused; sessions end when idle and at sign-out; every action is
//! in the audit log. The browser's view (headless Chromium) is `tests/python/test_console.py`.

use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};
use tessera_domain::api::{StaffAction, StaffRole};
use tessera_e2e::{Server, admin, seed};
use tessera_server::ServerConfig;
use tessera_server::service::staff::SessionLimits;

const PASSWORD: &str = "correct horse battery staple";

fn server(limits: SessionLimits) -> Server {
    Server::start_with(
        ServerConfig {
            console: limits,
            ..ServerConfig::default()
        },
        Some(seed()),
    )
}

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn create(server: &Server, email: &str, role: StaffRole) {
    let shop = (role == StaffRole::StoreStaff).then_some("st-paris-01");
    let (status, body) = admin(
        Method::POST,
        server,
        "/admin/v1/staff",
        json!({"email": email, "name": format!("{role:?}"), "role": role.as_str(),
            "store_id": shop, "password": PASSWORD}),
    );
    assert_eq!(status, 201, "{body}");
    assert!(body.get("password").is_none());
}

/// A signed-in browser: its cookie and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

fn sign_in(server: &Server, email: &str, password: &str) -> Response {
    client()
        .post(format!("{}/console/sign-in", server.url()))
        .form(&[("email", email), ("password", password)])
        .send()
        .unwrap()
}

fn signed_in(server: &Server, email: &str) -> Browser {
    let r = sign_in(server, email, PASSWORD);
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(attribute), "{set}");
    }
    let cookie = set.split(';').next().unwrap().to_owned();
    let home = client()
        .get(format!("{}/console", server.url()))
        .header("cookie", &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let csrf = home
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token in the page")
        .to_owned();
    Browser { cookie, csrf }
}

fn get(server: &Server, browser: Option<&Browser>, path: &str) -> Response {
    let mut r = client().get(format!("{}{path}", server.url()));
    if let Some(b) = browser {
        r = r.header("cookie", &b.cookie);
    }
    r.send().unwrap()
}

fn post(
    server: &Server,
    browser: Option<&Browser>,
    path: &str,
    form: &[(&str, &str)],
    origin: Option<&str>,
) -> Response {
    let mut r = client().post(format!("{}{path}", server.url())).form(form);
    if let Some(b) = browser {
        r = r.header("cookie", &b.cookie);
    }
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    r.send().unwrap()
}

fn member(server: &Server) -> (String, String) {
    let v = tessera_e2e::raw::enrolment(server);
    (
        v["member_id"].as_str().unwrap().to_owned(),
        v["card"]["card_number"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn every_route_refuses_the_roles_that_may_not_use_it() {
    let server = server(SessionLimits::default());
    let (member_id, card) = member(&server);
    let (status, _) = admin(
        Method::PUT,
        &server,
        "/admin/v1/webhooks/crm",
        json!({"url": "https://crm.example/hook"}),
    );
    assert_eq!(status, 201);
    let origin = server.url();
    let points = format!("/console/members/{member_id}/points");
    let lookup = format!("/console/members?q={card}");
    let consent = format!("/console/members/{member_id}/consent");
    let export = format!("/console/members/{member_id}/export");
    let erase = format!("/console/members/{member_id}/erase");
    // (method, path, what it needs: None for any signed-in role).
    let routes: Vec<(Method, &str, Option<StaffAction>)> = vec![
        (Method::GET, "/console", None),
        (Method::GET, "/console/kpis", Some(StaffAction::ViewKpis)),
        (
            Method::GET,
            "/console/kpis.csv?from=2026-11-01&to=2026-11-30",
            Some(StaffAction::ViewKpis),
        ),
        (
            Method::GET,
            "/console/members",
            Some(StaffAction::LookupMember),
        ),
        (Method::GET, &lookup, Some(StaffAction::LookupMember)),
        (Method::POST, &points, Some(StaffAction::CorrectPoints)),
        (Method::POST, &consent, Some(StaffAction::RecordConsent)),
        (Method::GET, &export, Some(StaffAction::ExportMember)),
        // Without the card number typed again: refused (422) by those who may erase.
        (Method::POST, &erase, Some(StaffAction::EraseMember)),
        (
            Method::GET,
            "/console/conflicts",
            Some(StaffAction::ResolveConflicts),
        ),
        // No such conflict: 404 for those who may decide conflicts.
        (
            Method::POST,
            "/console/conflicts/1/resolve",
            Some(StaffAction::ResolveConflicts),
        ),
        (
            Method::GET,
            "/console/webhooks",
            Some(StaffAction::Webhooks),
        ),
        (
            Method::POST,
            "/console/webhooks/crm/replay",
            Some(StaffAction::Webhooks),
        ),
        (Method::GET, "/console/audit", Some(StaffAction::ViewAudit)),
        (
            Method::GET,
            "/console/analytics",
            Some(StaffAction::Analytics),
        ),
        (
            Method::POST,
            "/console/analytics/run",
            Some(StaffAction::Analytics),
        ),
        (
            Method::GET,
            "/console/campaigns?count=1",
            Some(StaffAction::Campaigns),
        ),
        // No offer: refused (422) for those who may send campaigns.
        (
            Method::POST,
            "/console/campaigns",
            Some(StaffAction::Campaigns),
        ),
        (
            Method::GET,
            "/console/campaigns/count?segment=vip&shops=st-paris-01",
            Some(StaffAction::Campaigns),
        ),
        (
            Method::GET,
            "/console/journeys",
            Some(StaffAction::Campaigns),
        ),
        // No settings in the form: refused (422) for those who may run journeys.
        (
            Method::POST,
            "/console/journeys",
            Some(StaffAction::Campaigns),
        ),
        (
            Method::POST,
            "/console/journeys/run",
            Some(StaffAction::Campaigns),
        ),
        (Method::GET, "/console/rules", Some(StaffAction::Rules)),
        // No rule set in the form: refused (422) for those who may edit rules.
        (Method::POST, "/console/rules", Some(StaffAction::Rules)),
        // Checked as typed: an empty text is not a rule set (200, with the reason).
        (
            Method::POST,
            "/console/rules/check",
            Some(StaffAction::Rules),
        ),
        // No such version: 404 for those who may edit rules.
        (
            Method::POST,
            "/console/rules/versions/999/restore",
            Some(StaffAction::Rules),
        ),
        (Method::GET, "/console/loyalty", Some(StaffAction::Rules)),
        // No rules in the form: refused (422) for those who may edit rules.
        (Method::POST, "/console/loyalty", Some(StaffAction::Rules)),
        // No such version: 404 for those who may edit rules.
        (
            Method::POST,
            "/console/loyalty/versions/999/restore",
            Some(StaffAction::Rules),
        ),
        (
            Method::GET,
            "/console/staff",
            Some(StaffAction::ManageStaff),
        ),
        // No e-mail address: refused (422) for those who may manage staff.
        (
            Method::POST,
            "/console/staff",
            Some(StaffAction::ManageStaff),
        ),
        // No such account: 404 (no password: 422) for those who may manage staff.
        (
            Method::POST,
            "/console/staff/staff_nobody/disable",
            Some(StaffAction::ManageStaff),
        ),
        (
            Method::POST,
            "/console/staff/staff_nobody/enable",
            Some(StaffAction::ManageStaff),
        ),
        (
            Method::POST,
            "/console/staff/staff_nobody/password",
            Some(StaffAction::ManageStaff),
        ),
        (Method::GET, "/console/two-factor", None),
        // Neither on nor off: refused (422) for everyone.
        (Method::POST, "/console/two-factor", None),
        (
            Method::POST,
            "/console/staff/staff_nobody/two-factor-off",
            Some(StaffAction::ManageStaff),
        ),
        (Method::GET, "/console/password", None),
        // No new password: refused (422) for everyone.
        (Method::POST, "/console/password", None),
    ];
    for (method, path, _) in &routes {
        let r = if *method == Method::GET {
            get(&server, None, path)
        } else {
            post(&server, None, path, &[("csrf", "x")], Some(&origin))
        };
        assert_eq!(r.status(), 303, "anonymous {method} {path}");
        assert_eq!(r.headers()["location"], "/console/sign-in");
    }
    for role in StaffRole::ALL {
        let email = format!("{}@shop.example", role.as_str());
        create(&server, &email, role);
        let b = signed_in(&server, &email);
        for (method, path, needs) in &routes {
            let may = needs.is_none_or(|a| role.may(a));
            let r = if *method == Method::GET {
                get(&server, Some(&b), path)
            } else {
                post(
                    &server,
                    Some(&b),
                    path,
                    &[
                        ("csrf", &b.csrf),
                        ("points", "5"),
                        ("reason", "goodwill"),
                        ("purpose", "marketing_offers"),
                        ("channel", "email"),
                        ("decision", "granted"),
                        ("outcome", "accepted"),
                        ("note", "checked"),
                    ],
                    Some(&origin),
                )
            };
            let status = r.status().as_u16();
            if may {
                assert!(
                    [200, 303, 404, 422].contains(&status),
                    "{role:?} may {method} {path}: {status}"
                );
                if status == 303 {
                    assert_ne!(r.headers()["location"], "/console/sign-in");
                }
            } else {
                assert_eq!(status, 403, "{role:?} may not {method} {path}");
                assert!(r.text().unwrap().contains("Your role does not allow this."));
            }
        }
    }
    // Only support and admin corrected points: 10 in all; admin, support and store staff
    // recorded consent at the counter; nobody erased without typing the card number.
    let (_, me) = admin(
        Method::GET,
        &server,
        &format!("/admin/v1/members/{member_id}/export"),
        Value::Null,
    );
    assert_eq!(me["member"]["points"]["balance"], 10, "{me}");
    let consents = me["member"]["consents"].as_array().unwrap();
    assert_eq!(consents.len(), 3, "{me}");
    assert!(consents.iter().all(|c| c["source"] == "in_store"));
    let mut by: Vec<&str> = consents
        .iter()
        .map(|c| c["recorded_by"].as_str().unwrap())
        .collect();
    by.dedup();
    assert_eq!(
        by.len(),
        3,
        "each recorded under its staff account's id: {by:?}"
    );
    assert!(by.iter().all(|id| id.starts_with("staff_")));
}

#[test]
fn forms_without_the_token_or_from_another_site_are_refused_and_actions_audited() {
    let server = server(SessionLimits::default());
    let (member_id, card) = member(&server);
    create(&server, "support@shop.example", StaffRole::Support);
    let b = signed_in(&server, "support@shop.example");
    let path = format!("/console/members/{member_id}/points");
    let origin = server.url();
    for (csrf, origin, why) in [
        ("", Some(origin.as_str()), "no token"),
        ("forged", Some(origin.as_str()), "another token"),
        ("right", Some("https://evil.example"), "another site"),
        ("right", None, "no origin"),
    ] {
        let token = if csrf == "right" {
            b.csrf.as_str()
        } else {
            csrf
        };
        let r = post(
            &server,
            Some(&b),
            &path,
            &[
                ("csrf", token),
                ("points", "25"),
                ("reason", "late delivery"),
            ],
            origin,
        );
        assert_eq!(r.status(), 403, "{why}");
    }
    let r = post(
        &server,
        Some(&b),
        &path,
        &[
            ("csrf", &b.csrf),
            ("points", "25"),
            ("reason", "late delivery"),
        ],
        Some(&origin),
    );
    assert_eq!(r.status(), 303);
    let page = get(&server, Some(&b), &format!("/console/members?q={card}"))
        .text()
        .unwrap();
    assert!(page.contains("<dd id=\"balance\">25</dd>"), "{page}");
    assert!(page.contains("late delivery (by support@shop.example)"));
    // Typed refusals of bad values, nothing applied.
    for (points, reason) in [("0", "x"), ("ten", "x"), ("5", "")] {
        let r = post(
            &server,
            Some(&b),
            &path,
            &[("csrf", &b.csrf), ("points", points), ("reason", reason)],
            Some(&origin),
        );
        assert_eq!(r.status(), 422, "{points} {reason:?}");
    }
    let r = post(
        &server,
        Some(&b),
        "/console/members/m_nobody/points",
        &[("csrf", &b.csrf), ("points", "5"), ("reason", "x")],
        Some(&origin),
    );
    assert_eq!(r.status(), 404);

    create(&server, "admin@shop.example", StaffRole::Admin);
    let a = signed_in(&server, "admin@shop.example");
    let audit = get(&server, Some(&a), "/console/audit").text().unwrap();
    for entry in [
        "sign_in",
        "member_viewed",
        "points_corrected",
        "+25 points: late delivery",
    ] {
        assert!(audit.contains(entry), "{entry} in the audit log");
    }
}

#[test]
fn sessions_end_when_idle_and_at_sign_out_and_wrong_passwords_look_alike() {
    let server = server(SessionLimits {
        idle: Duration::from_millis(400),
        absolute: Duration::from_secs(3600),
    });
    create(&server, "staff@shop.example", StaffRole::StoreStaff);
    let b = signed_in(&server, "staff@shop.example");
    assert_eq!(get(&server, Some(&b), "/console").status(), 200);
    std::thread::sleep(Duration::from_millis(600));
    let r = get(&server, Some(&b), "/console");
    assert_eq!(r.status(), 303, "idle too long");

    let b = signed_in(&server, "staff@shop.example");
    let r = post(
        &server,
        Some(&b),
        "/console/sign-out",
        &[("csrf", &b.csrf)],
        Some(&server.url()),
    );
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        get(&server, Some(&b), "/console").status(),
        303,
        "signed out"
    );

    let wrong = sign_in(&server, "staff@shop.example", "not the password at all");
    let unknown = sign_in(&server, "nobody@shop.example", PASSWORD);
    assert_eq!(
        (wrong.status().as_u16(), unknown.status().as_u16()),
        (401, 401)
    );
    assert!(wrong.headers().get("set-cookie").is_none());
    assert_eq!(
        wrong.text().unwrap(),
        unknown.text().unwrap(),
        "not told apart"
    );
    let page = get(&server, None, "/console/sign-in");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
    assert_eq!(page.headers()["cache-control"], "no-store");
}

#[test]
fn sign_ins_are_throttled_per_address_known_or_not() {
    let server = server(SessionLimits::default());
    create(&server, "staff@shop.example", StaffRole::Support);
    create(&server, "other@shop.example", StaffRole::Admin);
    // A sign-in between failures starts the count again.
    for _ in 0..4 {
        assert_eq!(
            sign_in(&server, "staff@shop.example", "guess").status(),
            401
        );
    }
    signed_in(&server, "staff@shop.example");
    for address in ["staff@shop.example", "nobody@shop.example"] {
        for _ in 0..5 {
            assert_eq!(
                sign_in(&server, address, "guess").status(),
                401,
                "{address}"
            );
        }
        // Now even the right password is not checked, for a known address as for an unknown.
        let r = sign_in(&server, address, PASSWORD);
        assert_eq!(r.status(), 429, "{address}");
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&retry), "{retry}");
        assert!(r.headers().get("set-cookie").is_none());
        assert!(
            r.text()
                .unwrap()
                .contains("Too many failed sign-ins with this address: try again in 15 minutes."),
            "{address}"
        );
    }
    // Another address is not held back by them.
    signed_in(&server, "other@shop.example");
    // Every attempt is in the audit log.
    let b = signed_in(&server, "other@shop.example");
    let log = get(&server, Some(&b), "/console/audit").text().unwrap();
    assert!(log.contains("sign_in_throttled"), "{log}");
}

#[test]
fn staff_accounts_are_checked_when_created() {
    let server = server(SessionLimits::default());
    let make = |body: Value| admin(Method::POST, &server, "/admin/v1/staff", body);
    let ok = json!({"email": "Ada@Shop.example", "name": "Ada", "role": "support", "password": PASSWORD});
    assert_eq!(make(ok.clone()).0, 201);
    let (status, body) = make(
        json!({"email": "ada@shop.example", "name": "Ada", "role": "support", "password": PASSWORD}),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("account_exists")),
        "addresses compared without case"
    );
    for (body, code) in [
        (
            json!({"email": "x@y", "name": "X", "role": "support", "password": "short"}),
            "validation_failed",
        ),
        (
            json!({"email": "nope", "name": "X", "role": "support", "password": PASSWORD}),
            "validation_failed",
        ),
        (
            json!({"email": "s@y", "name": "X", "role": "store_staff", "password": PASSWORD}),
            "validation_failed",
        ),
        (
            json!({"email": "s@y", "name": "X", "role": "store_staff", "store_id": "st-nowhere", "password": PASSWORD}),
            "validation_failed",
        ),
        (
            json!({"email": "m@y", "name": "X", "role": "marketer", "store_id": "st-paris-01", "password": PASSWORD}),
            "validation_failed",
        ),
        (
            json!({"email": "r@y", "name": "X", "role": "owner", "password": PASSWORD}),
            "invalid_body",
        ),
    ] {
        let (status, answer) = make(body.clone());
        assert_eq!(
            (status, answer["code"].as_str()),
            (422, Some(code)),
            "{body}"
        );
    }
    let (status, list) = admin(Method::GET, &server, "/admin/v1/staff", Value::Null);
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["email"], "ada@shop.example");
    assert!(list[0].get("password_hash").is_none());
}

#[test]
fn support_decides_a_coupon_redeemed_at_two_offline_tills() {
    use tessera_till::{Done, Till};
    let server = server(SessionLimits::default());
    let dir = tempfile::tempdir().unwrap();
    let phone = tessera_e2e::phone(dir.path().join("m.db"));
    phone
        .enrol(&server.url(), "Chloé Martin", tessera_e2e::device())
        .unwrap();
    let code = tessera_e2e::race::fresh_coupon(&phone, "of-009");
    let tokens: Vec<String> = (0..2)
        .map(|_| tessera_e2e::till_token(&server, "st-paris-01"))
        .collect();
    let open = |i: usize, url: &str| {
        Till::open(
            dir.path().join(format!("till-{i}.journal")),
            url,
            &tokens[i],
            "st-paris-01",
            tessera_core::sync::ReqwestClient::shared(),
        )
        .unwrap()
    };
    for i in 0..2 {
        open(i, &server.url()); // its keys, then the network goes down
        let till = open(i, &tessera_e2e::dead_url());
        assert_eq!(
            till.redeem(&code, 2500, &format!("R-{i}")).unwrap(),
            Done::Offline
        );
    }
    for i in 0..2 {
        open(i, &server.url()).sync().unwrap();
    }
    create(&server, "support@shop.example", StaffRole::Support);
    let b = signed_in(&server, "support@shop.example");
    let page = get(&server, Some(&b), "/console/conflicts").text().unwrap();
    assert!(page.contains("receipt R-"), "{page}");
    let (_, list) = admin(
        Method::GET,
        &server,
        "/admin/v1/redemption-conflicts",
        Value::Null,
    );
    let id = list[0]["id"].as_u64().unwrap();
    assert!(list[0]["resolution"].is_null());
    let path = format!("/console/conflicts/{id}/resolve");
    let origin = server.url();
    let r = post(
        &server,
        Some(&b),
        &path,
        &[("csrf", &b.csrf), ("outcome", "recovered"), ("note", "")],
        Some(&origin),
    );
    assert_eq!(r.status(), 422, "a note is required");
    let form = [
        ("csrf", b.csrf.as_str()),
        ("outcome", "recovered"),
        ("note", "The shop refunded the discount"),
    ];
    assert_eq!(
        post(&server, Some(&b), &path, &form, Some(&origin)).status(),
        303
    );
    assert_eq!(
        post(&server, Some(&b), &path, &form, Some(&origin)).status(),
        404,
        "decided once"
    );
    let (_, list) = admin(
        Method::GET,
        &server,
        "/admin/v1/redemption-conflicts",
        Value::Null,
    );
    let r = &list[0]["resolution"];
    assert_eq!(r["outcome"], "recovered");
    assert_eq!(r["note"], "The shop refunded the discount");
    assert_eq!(r["resolved_by"], "support@shop.example");
    let page = get(&server, Some(&b), "/console/conflicts").text().unwrap();
    assert!(page.contains("Decided: recovered by support@shop.example"));
}

#[test]
fn store_staff_see_the_kpis_of_their_shop_only() {
    let server = server(SessionLimits::default());
    create(&server, "counter@shop.example", StaffRole::StoreStaff);
    let b = signed_in(&server, "counter@shop.example");
    let own = get(&server, Some(&b), "/console/kpis").text().unwrap();
    assert!(own.contains("Totals at st-paris-01"), "{own}");
    assert!(
        !own.contains("Shop (empty: every shop)"),
        "no shop to choose"
    );
    assert_eq!(
        get(&server, Some(&b), "/console/kpis?shop=st-paris-02").status(),
        403
    );
    assert_eq!(
        get(&server, Some(&b), "/console/kpis.csv?shop=st-paris-02").status(),
        403
    );
    let csv = get(
        &server,
        Some(&b),
        "/console/kpis.csv?from=2026-11-01&to=2026-11-03",
    );
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().unwrap();
    assert_eq!(text.lines().count(), 4, "a header and three days");
    assert!(text.lines().nth(1).unwrap().starts_with("2026-11-01,"));
    for (query, why) in [
        ("?from=2026-11-30&to=2026-11-01", "backwards"),
        ("?from=yesterday", "not a date"),
        ("?from=2020-01-01&to=2026-01-01", "too long"),
    ] {
        let r = get(&server, Some(&b), &format!("/console/kpis{query}"));
        assert_eq!(r.status(), 422, "{why}");
    }
    let (status, body) = admin(
        Method::GET,
        &server,
        "/admin/v1/kpis?from=2026-11-30&to=2026-11-01",
        Value::Null,
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed"))
    );
    let (status, body) = admin(Method::GET, &server, "/admin/v1/kpis", Value::Null);
    assert_eq!(status, 200);
    assert_eq!(
        body["days"].as_array().unwrap().len(),
        30,
        "the last 30 days by default"
    );
}

#[test]
fn rules_are_checked_as_they_are_typed_by_the_servers_own_checks() {
    let server = server(SessionLimits::default());
    create(&server, "marketing@shop.example", StaffRole::Marketer);
    let b = signed_in(&server, "marketing@shop.example");
    let origin = server.url();
    let check = |text: &str| {
        let r = post(
            &server,
            Some(&b),
            "/console/rules/check",
            &[("csrf", &b.csrf), ("rules", text)],
            Some(&origin),
        );
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        r.json::<Value>().unwrap()
    };
    let good = json!({"version": 1, "challenges": [], "earning": {"points_per_euro": 2}});
    assert_eq!(check(&good.to_string()), json!({"valid": true}));
    // A slip in the JSON: where it is, on its own, and why.
    let slip = check("{\n  \"version\": 1,\n  \"challenges\": [,]\n}");
    assert_eq!(slip["valid"], false, "{slip}");
    assert_eq!(
        (slip["line"].as_u64(), slip["column"].as_u64()),
        (Some(3), Some(18)),
        "{slip}"
    );
    assert!(
        !slip["reason"].as_str().unwrap().contains(" at line "),
        "{slip}"
    );
    // JSON the domain refuses (a goal of 0), named as `PUT /admin/v1/challenges` names it.
    let zero = json!({"version": 1, "earning": {"points_per_euro": 1}, "challenges": [
        {"id": "x", "title": "Never", "window": {"type": "rolling_days", "days": 7},
         "goal": {"type": "count", "target": 0, "filter": {"kinds": ["purchase"]}},
         "reward": {"type": "points", "points": 5}}]});
    let refused = check(&zero.to_string());
    assert_eq!(refused["valid"], false);
    assert!(refused.get("line").is_none_or(Value::is_null), "{refused}");
    let (status, api) = admin(Method::PUT, &server, "/admin/v1/challenges", zero);
    assert_eq!(status, 422);
    assert!(
        api.to_string()
            .contains(refused["reason"].as_str().unwrap()),
        "{api} / {refused}"
    );
    // Nothing was published or audited by checking.
    let (_, in_force) = admin(Method::GET, &server, "/admin/v1/challenges", Value::Null);
    assert_ne!(in_force["earning"]["points_per_euro"], 2, "{in_force}");
    create(&server, "admin@shop.example", StaffRole::Admin);
    let admin_browser = signed_in(&server, "admin@shop.example");
    let audit = get(&server, Some(&admin_browser), "/console/audit")
        .text()
        .unwrap();
    assert!(audit.contains("marketing@shop.example"), "{audit}");
    assert!(!audit.contains("rules_"), "checks are not audited: {audit}");
    // Without the token, or from another site: refused like any other form.
    for (csrf, from) in [
        ("forged", origin.as_str()),
        (b.csrf.as_str(), "https://evil.example"),
    ] {
        let r = post(
            &server,
            Some(&b),
            "/console/rules/check",
            &[("csrf", csrf), ("rules", "{}")],
            Some(from),
        );
        assert_eq!(r.status(), 403, "{csrf} from {from}");
    }
    // Only the rules page may run a script, and only the console's own file.
    let page = get(&server, Some(&b), "/console/rules");
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-eval") && !policy.contains("script-src 'unsafe-inline'"));
    let html = page.text().unwrap();
    assert!(
        html.contains("<script src=\"/console/assets/rules-check.js\" defer>"),
        "{html}"
    );
    let kpis = get(&server, Some(&b), "/console/kpis");
    let policy = kpis.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let html = kpis.text().unwrap();
    assert!(
        html.contains("<script src=\"/console/assets/kpis-live.js\" defer>"),
        "{html}"
    );
    assert!(!html.contains("http-equiv=\"refresh\""), "no timed reload");
    assert_eq!(
        get(&server, None, "/console/assets/kpis-live.js").status(),
        200
    );
    for other in ["/console", "/console/journeys"] {
        let r = get(&server, Some(&b), other);
        let policy = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(!policy.contains("script-src"), "{other}: {policy}");
        assert!(!r.text().unwrap().contains("<script"), "{other}");
    }
    let script = get(&server, None, "/console/assets/rules-check.js");
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(script.text().unwrap().contains("/console/rules/check"));
}

/// The `pass.json` of a `.pkpass`.
fn pass_json(pkpass: &[u8]) -> Value {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(pkpass)).unwrap();
    let mut text = String::new();
    zip.by_name("pass.json")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_member_page_shows_their_challenges_badges_and_wallet_passes() {
    use tessera_e2e::wallet::{PASS_TYPE_ID, StandIn, WalletFixture};
    let stand_in = StandIn::start();
    let fixture = WalletFixture::make(&stand_in.url, "http://127.0.0.1/passkit");
    let server = Server::start_with(
        ServerConfig {
            wallet: Some(std::sync::Arc::new(fixture.load())),
            ..ServerConfig::default()
        },
        Some(seed()),
    );
    let purchases =
        |target: u32| json!({"type": "count", "target": target, "filter": {"kinds": ["purchase"]}});
    let window = json!({"type": "rolling_days", "days": 30});
    let rules = json!({"version": 1, "earning": {"points_per_euro": 1}, "challenges": [
        {"id": "twice", "title": "Come back twice", "badge": "regular", "window": window,
         "goal": purchases(2), "reward": {"type": "points", "points": 50}},
        {"id": "thrice", "title": "Come back three times", "window": window,
         "goal": purchases(3), "reward": {"type": "points", "points": 80}},
        {"id": "reviewer", "title": "Post a review", "opt_in": true, "window": window,
         "goal": {"type": "count", "target": 1, "filter": {"kinds": ["review_posted"]}},
         "reward": {"type": "points", "points": 10}},
        {"id": "shopper", "title": "Shop after joining", "opt_in": true, "window": window,
         "goal": purchases(1), "reward": {"type": "points", "points": 10}}
    ]});
    assert_eq!(
        admin(Method::PUT, &server, "/admin/v1/challenges", rules).0,
        204
    );
    let v = tessera_e2e::raw::enrolment(&server);
    let (card, token) = (
        v["card"]["card_number"].as_str().unwrap(),
        v["tokens"]["access_token"].as_str().unwrap(),
    );
    let joined_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 2_000;
    let joined_at = tessera_domain::rfc3339_ms(joined_ms);
    let join = json!({"type": "join_challenge", "challenge_id": "shopper", "joined_at": joined_at});
    assert_eq!(
        tessera_e2e::raw::mutate(&server, token, &join.to_string()).0,
        200
    );
    let till = tessera_e2e::till_token(&server, "st-paris-01");
    for receipt in ["R-1", "R-2"] {
        let r = client()
            .post(format!("{}/v1/till/purchases", server.url()))
            .bearer_auth(&till)
            .header("idempotency-key", tessera_e2e::raw::key())
            .json(
                &json!({"receipt": receipt, "card_number": card, "total_cents": 1000,
                "lines": [{"sku": "sku-teapot", "category": "tea", "quantity": 1,
                           "amount_cents": 1000}]}),
            )
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    }
    // The card in Apple Wallet on one device, and offered to Google Wallet; a coupon's pass
    // made but added nowhere.
    let wallet = |path: &str| {
        let r = client()
            .get(format!("{}{path}", server.url()))
            .bearer_auth(token)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.bytes().unwrap()
    };
    let card_pass = pass_json(&wallet("/v1/wallet/apple/card"));
    let serial = card_pass["serialNumber"].as_str().unwrap();
    let registered = client()
        .post(format!(
            "{}/passkit/v1/devices/d-console/registrations/{PASS_TYPE_ID}/{serial}",
            server.url()
        ))
        .header(
            "authorization",
            format!(
                "ApplePass {}",
                card_pass["authenticationToken"].as_str().unwrap()
            ),
        )
        .json(&json!({"pushToken": "c0ffee02"}))
        .send()
        .unwrap();
    assert_eq!(registered.status(), 201);
    wallet("/v1/wallet/google/card");
    assert_eq!(tessera_e2e::raw::clip(&server, token, "of-009").0, 200);
    let me: Value = client()
        .get(format!("{}/v1/me", server.url()))
        .bearer_auth(token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let coupon = me["wallet"][0]["coupon_id"].as_str().unwrap().to_owned();
    wallet(&format!("/v1/wallet/apple/coupons/{coupon}"));

    create(&server, "support@shop.example", StaffRole::Support);
    let b = signed_in(&server, "support@shop.example");
    let page = get(&server, Some(&b), &format!("/console/members?q={card}"));
    assert_eq!(page.status(), 200);
    let html = page.text().unwrap();
    let rows = |table: &str| -> Vec<String> {
        let start = html.find(&format!("<table id=\"{table}\">")).expect(table);
        let body = &html[start..];
        let body = &body[..body.find("</table>").unwrap()];
        body.split("<tr>")
            .skip(2)
            .map(|row| {
                row.split("<td>")
                    .skip(1)
                    .map(|cell| cell.split("</td>").next().unwrap())
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect()
    };
    let passes = rows("passes");
    assert_eq!(passes.len(), 2, "{passes:?}");
    assert!(
        passes
            .iter()
            .any(|r| r.starts_with("Card | 1 | offered | ")),
        "{passes:?}"
    );
    assert!(
        passes
            .iter()
            .any(|r| r.starts_with(&format!("Coupon {coupon} | 0 | no | "))),
        "{passes:?}"
    );
    let challenges = rows("challenges");
    let row = |title: &str| {
        challenges
            .iter()
            .find(|r| r.starts_with(title))
            .unwrap_or_else(|| panic!("{title}: {challenges:?}"))
            .clone()
    };
    assert_eq!(
        row("Come back twice"),
        "Come back twice | open to all | 2 of 2 (completed) | 1 | rolling"
    );
    assert_eq!(
        row("Come back three times"),
        "Come back three times | open to all | 2 of 3 | 0 | rolling"
    );
    assert_eq!(
        row("Post a review"),
        "Post a review | not joined | 0 of 1 | 0 | rolling"
    );
    assert_eq!(
        row("Shop after joining"),
        format!("Shop after joining | {joined_at} | 1 of 1 (completed) | 1 | rolling")
    );
    assert!(
        html.contains("<ul id=\"badges\"><li>Come back twice (regular), "),
        "{html}"
    );
}

#[test]
fn the_audience_is_counted_as_it_is_built() {
    let server = server(SessionLimits::default());
    let (member_id, card) = member(&server);
    create(&server, "marketing@shop.example", StaffRole::Marketer);
    create(&server, "counter@shop.example", StaffRole::StoreStaff);
    let counter = signed_in(&server, "counter@shop.example");
    let origin = server.url();
    let r = post(
        &server,
        Some(&counter),
        &format!("/console/members/{member_id}/consent"),
        &[
            ("csrf", &counter.csrf),
            ("purpose", "marketing_offers"),
            ("channel", "push"),
            ("decision", "granted"),
        ],
        Some(&origin),
    );
    assert_eq!(r.status(), 303);
    let till = tessera_e2e::till_token(&server, "st-paris-01");
    let bought = client()
        .post(format!("{}/v1/till/purchases", server.url()))
        .bearer_auth(&till)
        .header("idempotency-key", tessera_e2e::raw::key())
        .json(
            &json!({"receipt": "R-1", "card_number": card, "total_cents": 1000,
            "lines": [{"sku": "sku-teapot", "category": "tea", "quantity": 1,
                       "amount_cents": 1000}]}),
        )
        .send()
        .unwrap();
    assert_eq!(bought.status(), 200);
    let b = signed_in(&server, "marketing@shop.example");
    let count = |query: &str| {
        let r = get(
            &server,
            Some(&b),
            &format!("/console/campaigns/count?{query}"),
        );
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap())
    };
    let reached = json!({"members": 1, "devices": 0, "without_device": 1});
    let nobody = json!({"members": 0, "devices": 0, "without_device": 0});
    assert_eq!(count(""), (200, reached.clone()));
    assert_eq!(count("shops=st-paris-01"), (200, reached.clone()));
    assert_eq!(count("shops=+st-lyon-01+,+st-paris-01"), (200, reached));
    assert_eq!(count("shops=st-lyon-01"), (200, nobody.clone()));
    assert_eq!(count("tiers=Gold&shops=st-paris-01"), (200, nobody));
    // Checked as the admin API checks a campaign's shops.
    let refused = |why: &str| {
        (
            422,
            json!({ "error": format!("campaign.audience.shops: {why}") }),
        )
    };
    assert_eq!(
        count("shops=st-paris-01,st-nope"),
        refused("no shop \"st-nope\" in the catalog")
    );
    let many = (0..51)
        .map(|i| format!("st-{i}"))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(count(&format!("shops={many}")), refused("at most 50"));
    let (status, why) = count("shops=not+an+id%21");
    assert_eq!(status, 422);
    assert!(
        why["error"]
            .as_str()
            .unwrap()
            .starts_with("campaign.audience.shops"),
        "{why}"
    );
    // The page: its script allowed, the send form hidden until the audience is counted, and
    // shown when it is (the button's way, without script).
    let page = get(&server, Some(&b), "/console/campaigns");
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let html = page.text().unwrap();
    assert!(html.contains("<script src=\"/console/assets/audience-count.js\" defer>"));
    assert!(html.contains("<section id=\"send\" aria-labelledby=\"send-title\" hidden>"));
    let html = get(
        &server,
        Some(&b),
        "/console/campaigns?shops=st-paris-01&count=1",
    )
    .text()
    .unwrap();
    assert!(html.contains("<section id=\"send\" aria-labelledby=\"send-title\">"));
    assert!(html.contains("<strong>1 member</strong> can be reached (0 devices; 1 without"));
    assert!(html.contains("<input type=\"hidden\" name=\"shops\" value=\"st-paris-01\">"));
    let html = get(
        &server,
        Some(&b),
        "/console/campaigns?shops=st-nope&count=1",
    )
    .text()
    .unwrap();
    assert!(
        html.contains("campaign.audience.shops: no shop &quot;st-nope&quot; in the catalog"),
        "{html}"
    );
    assert!(html.contains("<section id=\"send\" aria-labelledby=\"send-title\" hidden>"));
    let script = get(&server, None, "/console/assets/audience-count.js");
    assert_eq!(script.status(), 200);
    assert!(script.text().unwrap().contains("/console/campaigns/count?"));
}

/// The member code the app shows (`TM1:…`), as a scanner types it into the lookup: found when
/// fresh, refused by name when it is a screenshot of minutes ago, altered, or from a revoked
/// phone; each refusal in the audit log.
#[test]
fn staff_find_a_member_by_the_code_their_app_shows() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use tessera_core::member_code::{DeviceCertificate, member_code};

    let server = server(SessionLimits::default());
    let enrolled = tessera_e2e::raw::enrolment(&server);
    let member_id = enrolled["member_id"].as_str().unwrap().to_owned();
    let card = enrolled["card"]["card_number"].as_str().unwrap().to_owned();
    let token = enrolled["tokens"]["access_token"].as_str().unwrap();
    let pair = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap();
    let answer: Value = client()
        .post(format!("{}/v1/card/certificate", server.url()))
        .header("tessera-api-version", "1")
        .bearer_auth(token)
        .json(&json!({ "public_key": B64.encode(pair.public_key().as_ref()) }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let bytes = B64.decode(answer["certificate"].as_str().unwrap()).unwrap();
    let cert = DeviceCertificate::from_bytes(&bytes).unwrap().0;
    create(&server, "staff@shop.example", StaffRole::StoreStaff);
    let b = signed_in(&server, "staff@shop.example");
    let lookup = |code: &str| {
        let r = client()
            .get(format!("{}/console/members", server.url()))
            .query(&[("q", code)])
            .header("cookie", &b.cookie)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let now = jiff::Timestamp::now().as_second();

    let (status, page) = lookup(&member_code(&cert, &pair, now).unwrap());
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("<dd id=\"card\">{card}</dd>")),
        "{page}"
    );
    assert!(
        page.contains(&format!("value=\"{card}\"")) && !page.contains("TM1:"),
        "the page asks again by the card number, not by a code good for a minute"
    );

    let refused = |code: &str, reason: &str| {
        let (status, page) = lookup(code);
        assert_eq!(status, 422, "{reason}: {page}");
        assert!(
            page.contains(&format!("data-reason=\"{reason}\"")),
            "{reason}: {page}"
        );
        assert!(!page.contains(&card), "{reason}: no member shown");
    };
    // A screenshot taken three minutes ago.
    refused(&member_code(&cert, &pair, now - 180).unwrap(), "stale");
    // Made by a phone whose clock runs five minutes ahead, or forged for later.
    refused(
        &member_code(&cert, &pair, now + 300).unwrap(),
        "ahead_of_clock",
    );
    // Another key's signature under this certificate: a copied certificate.
    let mut copied = cert.clone();
    let other = Ed25519KeyPair::from_seed_unchecked(&[8; 32]).unwrap();
    copied
        .public_key
        .copy_from_slice(other.public_key().as_ref());
    refused(
        &member_code(&copied, &other, now).unwrap(),
        "forged_certificate",
    );
    refused("TM1:NOT A CODE", "malformed");

    // A lost phone: once its devices are revoked, its fresh codes find nobody.
    let (s, body) = admin(
        Method::POST,
        &server,
        &format!("/admin/v1/members/{member_id}/devices/revoke"),
        json!({}),
    );
    assert_eq!(s, 200, "{body}");
    refused(&member_code(&cert, &pair, now).unwrap(), "revoked");
    // The card number still finds them.
    assert_eq!(lookup(&card).0, 200);

    create(&server, "admin@shop.example", StaffRole::Admin);
    let a = signed_in(&server, "admin@shop.example");
    let audit = get(&server, Some(&a), "/console/audit").text().unwrap();
    for entry in [
        "by the app",
        "member_code_refused",
        "stale",
        "revoked",
        "forged_certificate",
    ] {
        assert!(audit.contains(entry), "{entry} in the audit log: {audit}");
    }
}

/// An admin creates, disables, enables and re-passwords accounts from the console; each change
/// ends the account's sessions at once; nobody changes their own account from that page; every
/// member of staff changes their own password, proving the current one, which ends their other
/// sessions. The admin API does the same for the operator. All audited.
#[test]
fn admins_manage_staff_accounts_and_everyone_their_own_password() {
    let server = server(SessionLimits::default());
    create(&server, "admin@shop.example", StaffRole::Admin);
    let a = signed_in(&server, "admin@shop.example");
    let origin = server.url();
    let send = |b: &Browser, path: &str, form: &[(&str, &str)]| {
        let mut fields = vec![("csrf", b.csrf.as_str())];
        fields.extend_from_slice(form);
        post(&server, Some(b), path, &fields, Some(&origin))
    };
    let new_account = |email: &str, role: &str, shop: &str, password: &str| {
        send(
            &a,
            "/console/staff",
            &[
                ("email", email),
                ("name", "Léa"),
                ("role", role),
                ("store_id", shop),
                ("password", password),
            ],
        )
    };
    // Typed refusals, nothing created.
    for (email, role, shop, password, why) in [
        (
            "lea@shop.example",
            "store_staff",
            "st-paris-01",
            "short",
            "the password is 12",
        ),
        (
            "lea@shop.example",
            "store_staff",
            "",
            PASSWORD,
            "names its shop",
        ),
        (
            "lea@shop.example",
            "marketer",
            "st-paris-01",
            PASSWORD,
            "only a store_staff",
        ),
        (
            "lea@shop.example",
            "store_staff",
            "st-nowhere",
            PASSWORD,
            "no such shop",
        ),
        ("lea@shop.example", "owner", "", PASSWORD, "Role:"),
        ("not-an-address", "support", "", PASSWORD, "e-mail address"),
        (
            "admin@shop.example",
            "support",
            "",
            PASSWORD,
            "has this e-mail",
        ),
    ] {
        let r = new_account(email, role, shop, password);
        assert_eq!(r.status(), 422, "{why}");
        assert!(r.text().unwrap().contains(why), "{why}");
    }
    let r = new_account("Lea@Shop.example", "store_staff", "st-paris-01", PASSWORD);
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/staff?done=created");
    let lea = signed_in(&server, "lea@shop.example");
    let page = get(&server, Some(&a), "/console/staff").text().unwrap();
    assert!(page.contains("lea@shop.example"), "{page}");
    let (_, accounts) = admin(Method::GET, &server, "/admin/v1/staff", Value::Null);
    let id_of = |email: &str| {
        accounts
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["email"] == email)
            .map(|x| x["id"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let (lea_id, admin_id) = (id_of("lea@shop.example"), id_of("admin@shop.example"));
    assert_eq!(accounts[1]["store_id"], "st-paris-01", "{accounts}");
    assert_eq!(accounts[1]["disabled"], false);

    // Disabled: her open session ends at once and she cannot sign in; enabled: she can.
    let r = send(&a, &format!("/console/staff/{lea_id}/disable"), &[]);
    assert_eq!(r.status(), 303);
    let r = get(&server, Some(&lea), "/console");
    assert_eq!(r.headers()["location"], "/console/sign-in", "session ended");
    assert_eq!(sign_in(&server, "lea@shop.example", PASSWORD).status(), 401);
    assert!(
        get(&server, Some(&a), "/console/staff")
            .text()
            .unwrap()
            .contains("disabled")
    );
    let r = send(&a, &format!("/console/staff/{lea_id}/enable"), &[]);
    assert_eq!(r.status(), 303);
    let lea = signed_in(&server, "lea@shop.example");

    // A new password set by the admin: her sessions end, the old password no longer works.
    let r = send(
        &a,
        &format!("/console/staff/{lea_id}/password"),
        &[("password", "short")],
    );
    assert_eq!(r.status(), 422);
    let fresh = "a new long passphrase for Léa";
    let r = send(
        &a,
        &format!("/console/staff/{lea_id}/password"),
        &[("password", fresh)],
    );
    assert_eq!(r.status(), 303);
    assert_eq!(
        get(&server, Some(&lea), "/console").headers()["location"],
        "/console/sign-in"
    );
    assert_eq!(sign_in(&server, "lea@shop.example", PASSWORD).status(), 401);
    assert_eq!(sign_in(&server, "lea@shop.example", fresh).status(), 303);

    // Not one's own account from the staff page (no lock-out, no session ended by mistake).
    for action in ["disable", "enable"] {
        let r = send(&a, &format!("/console/staff/{admin_id}/{action}"), &[]);
        assert_eq!(r.status(), 422, "{action}");
    }
    let r = send(
        &a,
        &format!("/console/staff/{admin_id}/password"),
        &[("password", fresh)],
    );
    assert_eq!(r.status(), 422);

    // Her own password: the current one proves it is her; her other sessions end, not this one.
    let here = {
        let r = sign_in(&server, "lea@shop.example", fresh);
        let cookie = r.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let home = client()
            .get(format!("{}/console/password", server.url()))
            .header("cookie", &cookie)
            .send()
            .unwrap()
            .text()
            .unwrap();
        let csrf = home
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        Browser { cookie, csrf }
    };
    let elsewhere = {
        let r = sign_in(&server, "lea@shop.example", fresh);
        let cookie = r.headers()["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_owned()
    };
    let mine = "Léa's very own passphrase";
    for (current, new, repeat, why) in [
        ("wrong password here", mine, mine, "current password is not"),
        (fresh, "short", "short", "the password is 12"),
        (fresh, mine, "something else entirely", "differ"),
    ] {
        let r = send(
            &here,
            "/console/password",
            &[("current", current), ("new", new), ("repeat", repeat)],
        );
        assert_eq!(r.status(), 422, "{why}");
        assert!(r.text().unwrap().contains(why), "{why}");
    }
    let r = send(
        &here,
        "/console/password",
        &[("current", fresh), ("new", mine), ("repeat", mine)],
    );
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/password?done=changed");
    // Ended: the session of the sign-in checked above, and `elsewhere`.
    assert_eq!(get(&server, Some(&here), "/console").status(), 200, "kept");
    let r = client()
        .get(format!("{}/console", server.url()))
        .header("cookie", &elsewhere)
        .send()
        .unwrap();
    assert_eq!(r.headers()["location"], "/console/sign-in", "ended");
    assert_eq!(sign_in(&server, "lea@shop.example", fresh).status(), 401);
    assert_eq!(sign_in(&server, "lea@shop.example", mine).status(), 303);

    // The operator does the same with the admin API.
    let path = format!("/admin/v1/staff/{lea_id}");
    let (s, body) = admin(Method::PATCH, &server, &path, json!({}));
    assert_eq!(s, 422, "nothing to change: {body}");
    let (s, body) = admin(Method::PATCH, &server, &path, json!({"password": "short"}));
    assert_eq!(s, 422, "{body}");
    let (s, _) = admin(
        Method::PATCH,
        &server,
        "/admin/v1/staff/staff_nobody",
        json!({"disabled": true}),
    );
    assert_eq!(s, 404);
    let (s, body) = admin(Method::PATCH, &server, &path, json!({"disabled": true}));
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["disabled"], true);
    assert!(body.get("password").is_none());
    assert_eq!(
        get(&server, Some(&here), "/console").headers()["location"],
        "/console/sign-in"
    );
    assert_eq!(sign_in(&server, "lea@shop.example", mine).status(), 401);

    let audit = get(&server, Some(&a), "/console/audit").text().unwrap();
    for entry in [
        "staff_created",
        "store_staff at st-paris-01",
        "staff_disabled",
        "staff_enabled",
        "staff_password_set",
        "password_change_refused",
        "password_changed",
        "2 other sessions ended",
        "operator",
    ] {
        assert!(audit.contains(entry), "{entry} in the audit log");
    }
}

/// A marketer changes the points and tier rules in the console: checked as the admin API checks
/// them (JSON placed by line and column, rules that break a rule, a web coupon for no offer),
/// published as a version with a note, in force at the next purchase, and an earlier version
/// restored as a new one. The operator's changes are versions too. Audited.
#[test]
fn marketers_publish_and_restore_points_and_tiers() {
    let server = server(SessionLimits::default());
    create(&server, "marketing@shop.example", StaffRole::Marketer);
    let b = signed_in(&server, "marketing@shop.example");
    let origin = server.url();
    let submit = |rules: &str, action: &str, note: &str| {
        post(
            &server,
            Some(&b),
            "/console/loyalty",
            &[
                ("csrf", &b.csrf),
                ("rules", rules),
                ("action", action),
                ("note", note),
            ],
            Some(&origin),
        )
    };
    let (_, start) = admin(Method::GET, &server, "/admin/v1/loyalty-rules", Value::Null);
    let page = get(&server, Some(&b), "/console/loyalty").text().unwrap();
    assert!(page.contains("&quot;points_per_euro&quot;: 1"), "{page}");

    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = start.clone();
        f(&mut v);
        serde_json::to_string_pretty(&v).unwrap()
    };
    for (text, why) in [
        ("{\n  \"points_per_euro\": 2,,", "line 2, column 24"),
        (&*with(&|v| v["tiers"][0]["threshold"] = json!(10)), "tiers"),
        (
            &*with(&|v| v["web_coupon"] = json!({"min_total_cents": 100, "offer_id": "of-nope"})),
            "web_coupon.offer_id",
        ),
    ] {
        let r = submit(text, "publish", "");
        assert_eq!(r.status(), 422, "{why}");
        let page = r.text().unwrap();
        assert!(page.contains(why), "{why}: {page}");
    }
    let doubled = with(&|v| v["points_per_euro"] = json!(2));
    let r = submit(&doubled, "check", "");
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("These rules pass every check."));
    let (_, unchanged) = admin(Method::GET, &server, "/admin/v1/loyalty-rules", Value::Null);
    assert_eq!(
        unchanged, start,
        "nothing published by a check or a refusal"
    );

    let r = submit(&doubled, "publish", "Double points for the autumn");
    assert_eq!(r.status(), 303);
    let (_, now) = admin(Method::GET, &server, "/admin/v1/loyalty-rules", Value::Null);
    assert_eq!(now["points_per_euro"], 2);
    // In force at the next purchase: 25 euros earn 50 points.
    let (_, card) = member(&server);
    let till = tessera_e2e::till_token(&server, "st-paris-01");
    let bought: Value = client()
        .post(format!("{}/v1/till/purchases", server.url()))
        .bearer_auth(&till)
        .header("idempotency-key", "loyalty-purchase-0001")
        .json(
            &json!({"receipt": "R-LOYALTY-1", "card_number": card, "total_cents": 2500,
            "lines": [{"sku": "tea", "quantity": 1, "amount_cents": 2500}]}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(bought["points_earned"], 50, "{bought}");

    // The operator's change is a version too.
    let tripled: Value = serde_json::from_str(&with(&|v| v["points_per_euro"] = json!(3))).unwrap();
    let (s, _) = admin(Method::PUT, &server, "/admin/v1/loyalty-rules", tripled);
    assert_eq!(s, 204);
    let versions = |server: &Server| {
        let (_, v) = admin(
            Method::GET,
            server,
            "/admin/v1/loyalty-rules/versions",
            Value::Null,
        );
        v.as_array().unwrap().clone()
    };
    let listed = versions(&server);
    assert_eq!(listed[0]["published_by"], "operator");
    assert_eq!(listed[1]["published_by"], "marketing@shop.example");
    assert_eq!(listed[1]["note"], "Double points for the autumn");
    let marketers = listed[1]["version"].as_i64().unwrap();
    let (_, old) = admin(
        Method::GET,
        &server,
        &format!("/admin/v1/loyalty-rules/versions/{marketers}"),
        Value::Null,
    );
    assert_eq!(old["points_per_euro"], 2);

    // Restored from the console: published again as a new version.
    let page = get(&server, Some(&b), "/console/loyalty").text().unwrap();
    assert!(
        page.contains(&format!("Restore version {marketers}")),
        "{page}"
    );
    let restore = |v: i64| {
        post(
            &server,
            Some(&b),
            &format!("/console/loyalty/versions/{v}/restore"),
            &[("csrf", &b.csrf)],
            Some(&origin),
        )
    };
    assert_eq!(restore(marketers).status(), 303);
    assert_eq!(restore(9_999).status(), 404);
    let (_, now) = admin(Method::GET, &server, "/admin/v1/loyalty-rules", Value::Null);
    assert_eq!(now["points_per_euro"], 2);
    let listed = versions(&server);
    assert_eq!(
        listed[0]["note"],
        format!("restored version {marketers}").as_str()
    );
    assert_eq!(listed[0]["published_by"], "marketing@shop.example");
    // And by the operator.
    let first = listed.last().unwrap()["version"].as_i64().unwrap();
    let (s, body) = admin(
        Method::POST,
        &server,
        &format!("/admin/v1/loyalty-rules/versions/{first}/restore"),
        Value::Null,
    );
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["version"], versions(&server)[0]["version"]);
    let (s, _) = admin(
        Method::POST,
        &server,
        "/admin/v1/loyalty-rules/versions/9999/restore",
        Value::Null,
    );
    assert_eq!(s, 404);

    create(&server, "admin@shop.example", StaffRole::Admin);
    let a = signed_in(&server, "admin@shop.example");
    let audit = get(&server, Some(&a), "/console/audit").text().unwrap();
    for entry in ["loyalty_rules_published", "loyalty_rules_restored"] {
        assert!(audit.contains(entry), "{entry} in the audit log");
    }
}

/// The code an authenticator app shows for `secret` (base32) at `at_s`: totp-rs's generator.
fn app_code(secret: &str, at_s: i64) -> String {
    totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap()
        .generate(at_s as u64)
        .to_string()
}

/// Two-factor sign-in: turned on by the member of staff (the key shown as a QR code and as
/// text, proven by a code and the password; refused otherwise with the same key shown again),
/// which ends their other sessions; then every sign-in needs the app's code, accepted once; an
/// admin turns it off for someone who lost their phone; turned off by its owner with a code.
#[test]
fn two_factor_sign_in_with_an_authenticator_app() {
    let server = server(SessionLimits::default());
    create(&server, "support@shop.example", StaffRole::Support);
    let here = signed_in(&server, "support@shop.example");
    let elsewhere = signed_in(&server, "support@shop.example");
    let origin = server.url();
    let send = |b: &Browser, form: &[(&str, &str)]| {
        let mut fields = vec![("csrf", b.csrf.as_str())];
        fields.extend_from_slice(form);
        post(
            &server,
            Some(b),
            "/console/two-factor",
            &fields,
            Some(&origin),
        )
    };
    let key_on = |page: &str| {
        page.split("<code id=\"totp-secret\">")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .expect("the key as text")
            .to_owned()
    };
    let page = get(&server, Some(&here), "/console/two-factor")
        .text()
        .unwrap();
    assert!(
        page.contains("<svg") && page.contains("QR code of the key"),
        "{page}"
    );
    let secret = key_on(&page);
    let now = || jiff::Timestamp::now().as_second();

    for (code, password, why) in [
        ("000000", PASSWORD, "not the code"),
        (
            &*app_code(&secret, now()),
            "not my password at all",
            "not your password",
        ),
        (&*app_code(&secret, now() - 300), PASSWORD, "not the code"),
    ] {
        let r = send(
            &here,
            &[
                ("action", "on"),
                ("secret", &secret),
                ("code", code),
                ("password", password),
            ],
        );
        assert_eq!(r.status(), 422, "{why}");
        let page = r.text().unwrap();
        assert!(page.contains(why), "{why}: {page}");
        assert_eq!(key_on(&page), secret, "the same key shown again");
    }
    // Turned on: the key the page shows, the app's code for now, the password.
    let with_key = |b: &Browser, secret: &str| {
        let code = app_code(secret, now());
        let on = [
            ("action", "on"),
            ("secret", secret),
            ("code", &code),
            ("password", PASSWORD),
        ];
        assert_eq!(send(b, &on).status(), 303);
    };
    let turn_on = |b: &Browser| {
        let page = get(&server, Some(b), "/console/two-factor");
        let secret = key_on(&page.text().unwrap());
        with_key(b, &secret);
        secret
    };
    with_key(&here, &secret);
    assert_eq!(get(&server, Some(&here), "/console").status(), 200, "kept");
    assert_eq!(
        get(&server, Some(&elsewhere), "/console").headers()["location"],
        "/console/sign-in",
        "the other session ended"
    );
    assert!(
        get(&server, Some(&here), "/console/two-factor")
            .text()
            .unwrap()
            .contains("Two-factor sign-in is on")
    );

    // Every sign-in needs the app's code now, and a code signs in once.
    let with_code = |code: &str| {
        client()
            .post(format!("{}/console/sign-in", server.url()))
            .form(&[
                ("email", "support@shop.example"),
                ("password", PASSWORD),
                ("code", code),
            ])
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        sign_in(&server, "support@shop.example", PASSWORD).status(),
        401
    );
    assert_eq!(with_code("123456"), 401);
    // The code of the step that turned it on was used; the app's next one (a step of skew).
    let next = app_code(&secret, now() + 30);
    assert_eq!(with_code(&next), 303);
    assert_eq!(with_code(&next), 401, "a code is accepted once");

    // A lost phone: an admin turns it off; their sessions end; a password signs in again.
    create(&server, "admin@shop.example", StaffRole::Admin);
    let a = signed_in(&server, "admin@shop.example");
    let (_, accounts) = admin(Method::GET, &server, "/admin/v1/staff", Value::Null);
    let support = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["email"] == "support@shop.example")
        .unwrap();
    assert_eq!(support["two_factor"], true);
    let id = support["id"].as_str().unwrap();
    let r = post(
        &server,
        Some(&a),
        &format!("/console/staff/{id}/two-factor-off"),
        &[("csrf", &a.csrf)],
        Some(&origin),
    );
    assert_eq!(r.status(), 303);
    assert_eq!(
        get(&server, Some(&here), "/console").headers()["location"],
        "/console/sign-in"
    );
    let again = signed_in(&server, "support@shop.example");

    // On again, then off by its owner: the password and a current code.
    let secret = turn_on(&again);
    let r = send(
        &again,
        &[
            ("action", "off"),
            ("code", "999999"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(r.status(), 422);
    let r = send(
        &again,
        &[
            ("action", "off"),
            ("code", &app_code(&secret, now())),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(r.status(), 303);
    assert_eq!(
        sign_in(&server, "support@shop.example", PASSWORD).status(),
        303
    );

    // The operator turns it off too (the last admin's lost phone), never on.
    let again = signed_in(&server, "support@shop.example");
    turn_on(&again);
    let path = format!("/admin/v1/staff/{id}");
    let (s, body) = admin(Method::PATCH, &server, &path, json!({"two_factor": true}));
    assert_eq!(s, 422, "{body}");
    assert_eq!(
        sign_in(&server, "support@shop.example", PASSWORD).status(),
        401
    );
    let (s, body) = admin(Method::PATCH, &server, &path, json!({"two_factor": false}));
    assert_eq!((s, &body["two_factor"]), (200, &json!(false)), "{body}");
    assert_eq!(
        sign_in(&server, "support@shop.example", PASSWORD).status(),
        303
    );

    let audit = get(&server, Some(&a), "/console/audit").text().unwrap();
    for entry in [
        "two_factor_on_refused",
        "two_factor_on",
        "two-factor code",
        "two_factor_reset",
        "two_factor_off",
        "1 other sessions ended",
    ] {
        assert!(audit.contains(entry), "{entry} in the audit log");
    }
}
