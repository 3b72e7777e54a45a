//! Consent helpers: a member enrolled with no quiet hours, the consent text, decisions, the
//! server's audience.

use reqwest::blocking::Client;
use serde_json::Value;
use tessera_core::consent::{Channel, ConsentText, Decision, Purpose};
use tessera_core::preferences::{NotificationRequest, Preferences};
use tessera_core::privacy::ConsentChoice;
use tessera_core::{Error, Tessera};

use crate::{ADMIN_TOKEN, Server, device};

pub fn invalid<T: std::fmt::Debug>(r: tessera_core::Result<T>) -> &'static str {
    match r {
        Err(Error::InvalidInput { field, .. }) => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

pub fn enrolled(server: &Server) -> (tempfile::TempDir, Tessera) {
    let dir = tempfile::tempdir().unwrap();
    let t = crate::phone(dir.path().join("member.db"));
    t.enrol(&server.url(), "Chloé Martin", device()).unwrap();
    // No quiet hours, so that notification checks do not depend on when the test runs.
    t.set_preferences(&Preferences {
        quiet_hours: None,
        ..t.preferences().unwrap()
    })
    .unwrap();
    (dir, t)
}

pub fn text() -> ConsentText {
    ConsentText {
        version: "consent-2026-11".into(),
        text: "We would like to send you offers. You can change your mind at any time.".into(),
    }
}

pub fn choose(t: &Tessera, pairs: &[(Purpose, Channel)], decision: Decision) {
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

pub fn member_id(t: &Tessera) -> String {
    t.sync_status().unwrap().member_id.unwrap()
}

pub fn admin(server: &Server) -> (Client, String) {
    (Client::new(), server.url())
}

pub fn audience(server: &Server, purpose: &str, channel: &str) -> Vec<String> {
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

pub fn push() -> NotificationRequest {
    NotificationRequest {
        purpose: Purpose::MarketingOffers,
        channel: Channel::Push,
        categories: vec![],
    }
}
