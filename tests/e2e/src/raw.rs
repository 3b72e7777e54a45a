//! A member over plain HTTP, as a web client or an attacker would be: no phone client, no
//! retries, the raw status and body.

use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::Server;

/// Enrol as a member with a plain HTTP client: the server's whole answer.
pub fn enrolment(server: &Server) -> Value {
    Client::new()
        .post(format!("{}/v1/enrol", server.url()))
        .json(&json!({"holder_name": "Eve Attacker", "device": {"platform": "cli", "app_version": "e2e"}}))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// Enrol as a member with a plain HTTP client: (member id, access token, refresh token).
pub fn enrol(server: &Server) -> (String, String, String) {
    let v = enrolment(server);
    (
        v["member_id"].as_str().unwrap().to_owned(),
        v["tokens"]["access_token"].as_str().unwrap().to_owned(),
        v["tokens"]["refresh_token"].as_str().unwrap().to_owned(),
    )
}

pub fn key() -> String {
    tessera_server::auth::random_token().unwrap()
}

/// A raw mutation: status and body.
pub fn mutate(server: &Server, token: &str, body: &str) -> (u16, Value) {
    let resp = Client::new()
        .post(format!("{}/v1/mutations", server.url()))
        .bearer_auth(token)
        .header("idempotency-key", key())
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
}

pub fn clip(server: &Server, token: &str, offer: &str) -> (u16, Value) {
    mutate(
        server,
        token,
        &json!({"type": "clip_offer", "offer_id": offer}).to_string(),
    )
}
