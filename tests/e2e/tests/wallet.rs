//! Wallet passes against the real server (issue #18): an Apple Wallet pass made for a member,
//! its signature checked by `openssl cms -verify` with the test CA; the PassKit web service run
//! end to end by a test client, and a purchase at a till leading to an APNs push for the pass
//! and a newer pass served; a Google Wallet save link (its JWT checked with the service
//! account's public key) and the object updated after a purchase, with an access token the
//! server minted at a stand-in token endpoint. Bad requests get typed problems.

use std::io::Read;
use std::sync::Arc;

use reqwest::blocking::Client;
use serde_json::{Value, json};
use sha1::Digest;
use tessera_e2e::wallet::{CLIENT_EMAIL, ISSUER_ID, PASS_TYPE_ID, StandIn, WalletFixture};
use tessera_e2e::{Server, seed, till_token};
use tessera_server::ServerConfig;

fn server(fixture: &WalletFixture) -> Server {
    let config = ServerConfig {
        wallet: Some(Arc::new(fixture.load())),
        jobs: tessera_server::jobs::JobConfig {
            poll: std::time::Duration::from_millis(50),
            ..Default::default()
        },
        ..ServerConfig::default()
    };
    Server::start_with(config, Some(seed()))
}

/// (member id, card number, access token).
fn enrol(server: &Server) -> (String, String, String) {
    let v = tessera_e2e::raw::enrolment(server);
    let s = |v: &Value| v.as_str().unwrap().to_owned();
    (
        s(&v["member_id"]),
        s(&v["card"]["card_number"]),
        s(&v["tokens"]["access_token"]),
    )
}

fn get(server: &Server, path: &str, token: &str) -> reqwest::blocking::Response {
    Client::new()
        .get(format!("{}{path}", server.url()))
        .bearer_auth(token)
        .send()
        .unwrap()
}

fn unzip(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut out = Vec::new();
            f.read_to_end(&mut out).unwrap();
            (f.name().to_owned(), out)
        })
        .collect()
}

/// `openssl cms -verify` of the detached signature over `manifest`, trusting only the test CA.
fn cms_verify(fixture: &WalletFixture, signature: &[u8], manifest: &[u8]) -> bool {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("signature"), signature).unwrap();
    std::fs::write(d.path().join("manifest.json"), manifest).unwrap();
    std::process::Command::new("openssl")
        .args([
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "signature",
        ])
        .args([
            "-content",
            "manifest.json",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ])
        .arg("-CAfile")
        .arg(&fixture.root)
        .current_dir(d.path())
        .output()
        .unwrap()
        .status
        .success()
}

fn sha1_hex(bytes: &[u8]) -> String {
    sha1::Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The pass's files: every manifest hash matches, the signature verifies with the test CA and
/// fails on an altered manifest; pass.json keeps Apple's field rules.
fn check_pkpass(fixture: &WalletFixture, bytes: &[u8]) -> Value {
    let files = unzip(bytes);
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let listed: Vec<&String> = manifest.as_object().unwrap().keys().collect();
    let present: Vec<&String> = files
        .keys()
        .filter(|n| *n != "manifest.json" && *n != "signature")
        .collect();
    assert_eq!(listed, present, "the manifest lists every file");
    for (name, hash) in manifest.as_object().unwrap() {
        assert_eq!(hash.as_str().unwrap(), sha1_hex(&files[name]), "{name}");
    }
    assert!(cms_verify(
        fixture,
        &files["signature"],
        &files["manifest.json"]
    ));
    let mut altered = files["manifest.json"].clone();
    altered[5] ^= 1;
    assert!(
        !cms_verify(fixture, &files["signature"], &altered),
        "an altered manifest does not verify"
    );
    let pass: Value = serde_json::from_slice(&files["pass.json"]).unwrap();
    assert_eq!(pass["formatVersion"], 1);
    assert_eq!(pass["passTypeIdentifier"], PASS_TYPE_ID);
    assert_eq!(pass["teamIdentifier"], "TESSERA123");
    assert!(pass["authenticationToken"].as_str().unwrap().len() >= 16);
    assert!(pass["locations"].as_array().unwrap().len() <= 10);
    assert!(files.contains_key("icon.png"));
    pass
}

#[test]
fn an_apple_wallet_pass_is_signed_with_the_pass_type_certificate() {
    let stand_in = StandIn::start();
    let fixture = WalletFixture::make(&stand_in.url, "http://127.0.0.1/passkit");
    let server = server(&fixture);
    let (member, card, token) = enrol(&server);
    let resp = get(
        &server,
        "/v1/wallet/apple/card?lat=48.8566&lon=2.3522",
        &token,
    );
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.apple.pkpass"
    );
    assert!(resp.headers().contains_key("last-modified"));
    let bytes = resp.bytes().unwrap();
    let pass = check_pkpass(&fixture, &bytes);
    // The signature carries the pass type certificate and the WWDR intermediate, no more.
    let certs =
        tessera_server::wallet::apple::signer_certificates(&unzip(&bytes)["signature"]).unwrap();
    let subjects: Vec<String> = certs
        .iter()
        .map(|c| c.tbs_certificate.subject.to_string())
        .collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(
        subjects.iter().any(|s| s.contains(PASS_TYPE_ID)),
        "{subjects:?}"
    );
    assert!(
        subjects
            .iter()
            .any(|s| s.contains("Worldwide Developer Relations")),
        "{subjects:?}"
    );
    assert_eq!(pass["serialNumber"], format!("card-{member}"));
    assert_eq!(pass["barcodes"][0]["message"], card.as_str());
    assert_eq!(pass["storeCard"]["primaryFields"][0]["key"], "points");
    let first = &pass["locations"][0];
    assert!(
        (first["latitude"].as_f64().unwrap() - 48.85).abs() < 0.2,
        "the nearest shop first: {first}"
    );
    let bad = [
        ("/v1/wallet/apple/card?lat=91&lon=0", 422),
        ("/v1/wallet/apple/card?lat=1", 422),
        ("/v1/wallet/apple/card?lat=x&lon=0", 400),
        ("/v1/wallet/apple/coupons/cp-nobody", 404),
        ("/v1/wallet/apple/coupons/not%20an%20id", 422),
    ];
    for (path, status) in bad {
        let resp = get(&server, path, &token);
        assert_eq!(resp.status().as_u16(), status, "{path}");
        let problem: Value = resp.json().unwrap();
        assert!(problem["code"].is_string(), "{path}: {problem}");
    }
    assert_eq!(get(&server, "/v1/wallet/apple/card", "nope").status(), 401);
    // A server without wallets says so.
    let plain = Server::start();
    let (_, _, t) = enrol(&plain);
    let resp = get(&plain, "/v1/wallet/apple/card", &t);
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().unwrap()["code"],
        "wallet_not_configured"
    );
}

fn passkit(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    auth: Option<&str>,
    body: Option<String>,
) -> reqwest::blocking::Response {
    let mut req = Client::new().request(method, format!("{}/passkit/v1{path}", server.url()));
    if let Some(a) = auth {
        req = req.header("authorization", format!("ApplePass {a}"));
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    req.send().unwrap()
}

fn purchase(server: &Server, till: &str, card: &str, receipt: &str, cents: u64) {
    let resp = Client::new()
        .post(format!("{}/v1/till/purchases", server.url()))
        .bearer_auth(till)
        .header("idempotency-key", tessera_e2e::raw::key())
        .json(&json!({"receipt": receipt, "card_number": card, "total_cents": cents,
            "lines": [{"sku": "sku-teapot", "category": "tea", "quantity": 1, "amount_cents": cents}]}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());
}

/// A server with wallets and its stand-in, a member, and the member's card pass as added:
/// (stand-in, fixture, server, card number, access token, pass.json).
fn with_card_pass() -> (StandIn, WalletFixture, Server, String, String, Value) {
    let stand_in = StandIn::start();
    let fixture = WalletFixture::make(&stand_in.url, "http://127.0.0.1/passkit");
    let server = server(&fixture);
    let (_, card, token) = enrol(&server);
    let pass = check_pkpass(
        &fixture,
        &get(&server, "/v1/wallet/apple/card", &token)
            .bytes()
            .unwrap(),
    );
    (stand_in, fixture, server, card, token, pass)
}

/// What a device's Wallet does, as Apple documents it: register with the pass's token, ask
/// which passes changed since its tag, fetch them (If-Modified-Since), unregister, report logs.
#[test]
fn the_passkit_web_service_runs_end_to_end_and_a_purchase_pushes_a_newer_pass() {
    let (stand_in, fixture, server, card, _, pass) = with_card_pass();
    let serial = pass["serialNumber"].as_str().unwrap().to_owned();
    let auth = pass["authenticationToken"].as_str().unwrap().to_owned();
    assert_eq!(pass["storeCard"]["primaryFields"][0]["value"], 0);
    let device = "a1b2c3d4e5f6";
    let registration = format!("/devices/{device}/registrations/{PASS_TYPE_ID}/{serial}");
    let push_token = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let body = json!({"pushToken": push_token}).to_string();
    use reqwest::Method;
    let r = passkit(
        &server,
        Method::POST,
        &registration,
        Some(&auth),
        Some(body.clone()),
    );
    assert_eq!(r.status(), 201, "registered");
    let r = passkit(
        &server,
        Method::POST,
        &registration,
        Some(&auth),
        Some(body.clone()),
    );
    assert_eq!(r.status(), 200, "already registered");
    // Refused: another pass's token, no token, another pass type, a bad body, a huge body.
    for (auth, path, body, status) in [
        (
            Some("x".repeat(43)),
            registration.clone(),
            body.clone(),
            401,
        ),
        (None, registration.clone(), body.clone(), 401),
        (
            Some(auth.clone()),
            format!("/devices/{device}/registrations/pass.other.type/{serial}"),
            body.clone(),
            401,
        ),
        (
            Some(auth.clone()),
            registration.clone(),
            "{not json".into(),
            400,
        ),
        (
            Some(auth.clone()),
            registration.clone(),
            json!({"pushToken": "not hex!"}).to_string(),
            400,
        ),
        (
            Some(auth.clone()),
            registration.clone(),
            json!({"pushToken": "a".repeat(100_000)}).to_string(),
            413,
        ),
        (
            Some(auth.clone()),
            format!("/devices/bad%20device/registrations/{PASS_TYPE_ID}/{serial}"),
            body.clone(),
            400,
        ),
    ] {
        let r = passkit(&server, Method::POST, &path, auth.as_deref(), Some(body));
        assert_eq!(r.status().as_u16(), status, "{path}");
        let problem: Value = r.json().unwrap();
        assert!(problem["code"].is_string(), "a problem document: {problem}");
    }

    // What changed since nothing: this pass, with a tag.
    let list = format!("/devices/{device}/registrations/{PASS_TYPE_ID}");
    let r = passkit(&server, Method::GET, &list, None, None);
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().unwrap();
    assert_eq!(answer["serialNumbers"], json!([serial]));
    let tag = answer["lastUpdated"].as_str().unwrap().to_owned();
    let since = format!("{list}?passesUpdatedSince={tag}");
    assert_eq!(
        passkit(&server, Method::GET, &since, None, None).status(),
        204
    );
    let latest = format!("/passes/{PASS_TYPE_ID}/{serial}");
    let r = passkit(&server, Method::GET, &latest, Some(&auth), None);
    assert_eq!(r.status(), 200);
    let modified = r.headers()["last-modified"].to_str().unwrap().to_owned();
    let not_modified = Client::new()
        .get(format!("{}/passkit/v1{latest}", server.url()))
        .header("authorization", format!("ApplePass {auth}"))
        .header("if-modified-since", &modified)
        .send()
        .unwrap();
    assert_eq!(not_modified.status(), 304);
    assert_eq!(
        passkit(
            &server,
            Method::GET,
            &latest,
            Some("wrong-token-wrong-token"),
            None
        )
        .status(),
        401
    );

    // A purchase at a till: the points change, the device is pushed, a newer pass is served.
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let till = till_token(&server, "st-paris-01");
    purchase(&server, &till, &card, "r-wallet-1", 4_500);
    let push = stand_in.wait_for("an APNs push for the pass", |s| {
        s.path == format!("/3/device/{push_token}")
    });
    assert_eq!(push.header("apns-topic"), PASS_TYPE_ID);
    assert_eq!(push.json(), json!({}), "an empty payload");
    let r = passkit(&server, Method::GET, &since, None, None);
    assert_eq!(r.status(), 200, "the pass changed since the tag");
    let answer: Value = r.json().unwrap();
    assert_eq!(answer["serialNumbers"], json!([serial]));
    assert!(
        answer["lastUpdated"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > tag.parse::<i64>().unwrap()
    );
    let newer = Client::new()
        .get(format!("{}/passkit/v1{latest}", server.url()))
        .header("authorization", format!("ApplePass {auth}"))
        .header("if-modified-since", &modified)
        .send()
        .unwrap();
    assert_eq!(newer.status(), 200, "modified since");
    let newer = check_pkpass(&fixture, &newer.bytes().unwrap());
    assert!(
        newer["storeCard"]["primaryFields"][0]["value"]
            .as_i64()
            .unwrap()
            > 0
    );
    assert_eq!(
        newer["authenticationToken"],
        auth.as_str(),
        "the token never changes"
    );
    // One push for one change: nothing more once the wallet was told.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pushes = stand_in
        .seen()
        .iter()
        .filter(|s| s.path.starts_with("/3/device/"))
        .count();
    assert_eq!(pushes, 1);

    // Wallet's logs are taken; a device unregisters and hears nothing more.
    let r = passkit(
        &server,
        Method::POST,
        "/log",
        None,
        Some(json!({"logs": ["[2026-11-30] Web service error"]}).to_string()),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(
        passkit(&server, Method::POST, "/log", None, Some("[]".into())).status(),
        400
    );
    let r = passkit(&server, Method::DELETE, &registration, Some(&auth), None);
    assert_eq!(r.status(), 200);
    assert_eq!(
        passkit(&server, Method::GET, &list, None, None).status(),
        204
    );

    // An erased member's pass is gone with them: the web service no longer knows it.
    let member = serial.strip_prefix("card-").unwrap();
    let (s, _) = tessera_e2e::admin(
        Method::DELETE,
        &server,
        &format!("/admin/v1/members/{member}"),
        Value::Null,
    );
    assert_eq!(s, 200);
    assert_eq!(
        passkit(&server, Method::GET, &latest, Some(&auth), None).status(),
        401
    );
    assert_eq!(server.integers("SELECT count(*) FROM wallet_pass"), [0]);
}

#[test]
fn a_device_apns_no_longer_knows_is_forgotten() {
    let (stand_in, _fixture, server, card, _, pass) = with_card_pass();
    let (serial, auth) = (
        pass["serialNumber"].as_str().unwrap(),
        pass["authenticationToken"].as_str().unwrap(),
    );
    let registration = format!("/devices/d1/registrations/{PASS_TYPE_ID}/{serial}");
    let r = passkit(
        &server,
        reqwest::Method::POST,
        &registration,
        Some(auth),
        Some(json!({"pushToken": "gone0123"}).to_string()),
    );
    assert_eq!(r.status(), 201);
    let till = till_token(&server, "st-paris-01");
    purchase(&server, &till, &card, "r-gone-1", 2_000);
    stand_in.wait_for("the push APNs refuses", |s| s.path == "/3/device/gone0123");
    let start = std::time::Instant::now();
    while server.integers("SELECT count(*) FROM wallet_registration") != [0] {
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn jwt_claims(fixture: &WalletFixture, jwt: &str, audience: &str) -> Value {
    let key =
        jsonwebtoken::DecodingKey::from_rsa_pem(&std::fs::read(&fixture.google_public).unwrap())
            .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.required_spec_claims = ["iat".to_owned()].into();
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<Value>(jwt, &key, &validation).unwrap();
    assert_eq!(data.header.kid.as_deref(), Some("kid-1"));
    data.claims
}

#[test]
fn google_wallet_links_are_signed_and_objects_follow_the_member() {
    let stand_in = StandIn::start();
    let fixture = WalletFixture::make(&stand_in.url, "http://127.0.0.1/passkit");
    let server = server(&fixture);
    let (member, card, token) = enrol(&server);
    let resp = get(&server, "/v1/wallet/google/card", &token);
    assert_eq!(resp.status(), 200);
    let link: Value = resp.json().unwrap();
    let url = link["save_url"].as_str().unwrap();
    let jwt = url
        .strip_prefix("https://pay.google.com/gp/v/save/")
        .unwrap();
    let claims = jwt_claims(&fixture, jwt, "google");
    assert_eq!(claims["iss"], CLIENT_EMAIL);
    assert_eq!(claims["typ"], "savetowallet");
    assert_eq!(claims["origins"], json!(["https://tessera.example"]));
    let object = &claims["payload"]["loyaltyObjects"][0];
    assert_eq!(object["id"], format!("{ISSUER_ID}.card-{member}"));
    assert_eq!(object["id"], link["object_id"]);
    assert_eq!(object["classId"], format!("{ISSUER_ID}.tessera-club"));
    assert_eq!(object["accountId"], card.as_str());
    assert_eq!(object["loyaltyPoints"]["balance"]["int"], 0);
    assert_eq!(object["state"], "ACTIVE");
    let class = &claims["payload"]["loyaltyClasses"][0];
    assert_eq!(class["programName"], "Tessera Club");
    assert_eq!(class["reviewStatus"], "UNDER_REVIEW");

    // A purchase: the server mints an access token at the token endpoint (an RS256 assertion
    // for the Wallet scope) and replaces the object with its new balance.
    let till = till_token(&server, "st-paris-01");
    purchase(&server, &till, &card, "r-google-1", 4_500);
    let update = stand_in.wait_for("the object update", |s| {
        s.path.starts_with("/walletobjects/v1/loyaltyObject/")
    });
    assert_eq!(update.method, reqwest::Method::PUT);
    assert_eq!(
        update.path,
        format!("/walletobjects/v1/loyaltyObject/{ISSUER_ID}.card-{member}")
    );
    assert_eq!(update.header("authorization"), "Bearer ya29.test-1");
    assert!(
        update.json()["loyaltyPoints"]["balance"]["int"]
            .as_i64()
            .unwrap()
            > 0
    );
    let minted = stand_in.wait_for("the token request", |s| s.path == "/token");
    let form: Vec<(String, String)> = url_form(&minted.body);
    assert_eq!(
        form[0],
        (
            "grant_type".into(),
            "urn:ietf:params:oauth:grant-type:jwt-bearer".into()
        )
    );
    let assertion = jwt_claims(&fixture, &form[1].1, &format!("{}/token", stand_in.url));
    assert_eq!(assertion["iss"], CLIENT_EMAIL);
    assert_eq!(
        assertion["scope"],
        "https://www.googleapis.com/auth/wallet_object.issuer"
    );
    assert_eq!(
        assertion["exp"].as_i64().unwrap() - assertion["iat"].as_i64().unwrap(),
        3600
    );
    // A second change reuses the cached token.
    purchase(&server, &till, &card, "r-google-2", 1_500);
    let start = std::time::Instant::now();
    loop {
        let updates = stand_in
            .seen()
            .into_iter()
            .filter(|s| s.path.starts_with("/walletobjects/"))
            .collect::<Vec<_>>();
        if updates.len() >= 2 {
            assert_eq!(updates[1].header("authorization"), "Bearer ya29.test-1");
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let tokens = stand_in
        .seen()
        .iter()
        .filter(|s| s.path == "/token")
        .count();
    assert_eq!(tokens, 1, "one token for both updates");
}

fn url_form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The phone's entry points: "Add to Apple Wallet" for the card and for a coupon, "Save to Google
/// Wallet"; once the coupon is redeemed at a till its pass is voided and its Google object
/// completed, and a device registered for the coupon's pass is pushed.
#[test]
fn the_phone_adds_its_card_and_coupons_to_the_wallets_and_a_redeemed_coupon_is_voided() {
    use tessera_core::sync::WalletKind;
    let stand_in = StandIn::start();
    let fixture = WalletFixture::make(&stand_in.url, "http://127.0.0.1/passkit");
    let server = server(&fixture);
    let dir = tempfile::tempdir().unwrap();
    let phone = tessera_e2e::phone(dir.path().join("m.db"));
    phone
        .enrol(&server.url(), "Chloé Martin", tessera_e2e::device())
        .unwrap();
    let near = tessera_core::geo::Position {
        latitude: 45.76,
        longitude: 4.83,
    };
    let card = check_pkpass(
        &fixture,
        &phone
            .wallet_pass(WalletKind::Apple, None, Some(near))
            .unwrap(),
    );
    assert_eq!(
        card["barcodes"][0]["message"],
        phone.card().unwrap().card_number.as_str()
    );
    assert!(
        (card["locations"][0]["latitude"].as_f64().unwrap() - 45.76).abs() < 0.2,
        "Lyon's shop first"
    );
    let link =
        String::from_utf8(phone.wallet_pass(WalletKind::Google, None, None).unwrap()).unwrap();
    assert!(link.starts_with("https://pay.google.com/gp/v/save/"));

    let code = tessera_e2e::race::fresh_coupon(&phone, "of-009");
    let coupon = phone
        .wallet()
        .unwrap()
        .into_iter()
        .find(|c| c.code == code)
        .unwrap();
    let pass = check_pkpass(
        &fixture,
        &phone
            .wallet_pass(WalletKind::Apple, Some(&coupon.coupon_id), None)
            .unwrap(),
    );
    assert_eq!(pass["barcodes"][0]["message"], code.as_str());
    assert_eq!(pass["barcodes"][0]["format"], "PKBarcodeFormatQR");
    assert!(pass["coupon"].is_object());
    assert!(pass.get("voided").is_none());
    let link = String::from_utf8(
        phone
            .wallet_pass(WalletKind::Google, Some(&coupon.coupon_id), None)
            .unwrap(),
    )
    .unwrap();
    let claims = jwt_claims(
        &fixture,
        link.strip_prefix("https://pay.google.com/gp/v/save/")
            .unwrap(),
        "google",
    );
    assert_eq!(
        claims["payload"]["offerObjects"][0]["barcode"]["value"],
        code.as_str()
    );
    assert_eq!(
        claims["payload"]["offerClasses"][0]["id"],
        format!("{ISSUER_ID}.of-009")
    );
    // The card links the coupon offered to Google: the card's object is updated at once.
    let linked = json!([format!("{ISSUER_ID}.{}", coupon.coupon_id)]);
    stand_in.wait_for("the card's object linking the coupon", |s| {
        s.path.starts_with("/walletobjects/v1/loyaltyObject/")
            && s.json()["linkedOfferIds"] == linked
    });
    let link =
        String::from_utf8(phone.wallet_pass(WalletKind::Google, None, None).unwrap()).unwrap();
    let claims = jwt_claims(
        &fixture,
        link.strip_prefix("https://pay.google.com/gp/v/save/")
            .unwrap(),
        "google",
    );
    assert_eq!(
        claims["payload"]["loyaltyObjects"][0]["linkedOfferIds"],
        json!([format!("{ISSUER_ID}.{}", coupon.coupon_id)])
    );
    let (serial, auth) = (
        pass["serialNumber"].as_str().unwrap(),
        pass["authenticationToken"].as_str().unwrap(),
    );
    let r = passkit(
        &server,
        reqwest::Method::POST,
        &format!("/devices/d-coupon/registrations/{PASS_TYPE_ID}/{serial}"),
        Some(auth),
        Some(json!({"pushToken": "c0ffee01"}).to_string()),
    );
    assert_eq!(r.status(), 201);

    let till = tessera_e2e::open_till(&server, dir.path().join("t.journal"), "st-lyon-01");
    till.redeem(&code, 5_000, "r-coupon-1").unwrap();
    stand_in.wait_for("the coupon pass's push", |s| s.path == "/3/device/c0ffee01");
    let update = stand_in.wait_for("the offer object's update", |s| {
        s.path.starts_with("/walletobjects/v1/offerObject/")
    });
    assert_eq!(update.json()["state"], "COMPLETED");
    let r = passkit(
        &server,
        reqwest::Method::GET,
        &format!("/passes/{PASS_TYPE_ID}/{serial}"),
        Some(auth),
        None,
    );
    let voided = check_pkpass(&fixture, &r.bytes().unwrap());
    assert_eq!(
        voided["voided"], true,
        "a redeemed coupon is voided in the wallet"
    );
    // Another member's coupon is not this member's to add.
    let other = tessera_e2e::phone(dir.path().join("other.db"));
    other
        .enrol(&server.url(), "Zoé", tessera_e2e::device())
        .unwrap();
    assert!(matches!(
        other.wallet_pass(WalletKind::Apple, Some(&coupon.coupon_id), None),
        Err(tessera_core::sync::SyncError::Server { status: 404, .. })
    ));
}
