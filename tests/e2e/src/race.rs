//! Tills racing for one coupon: the harness of the exactly-once tests (one server, or several
//! server processes on one database).

use std::sync::{Arc, Barrier, Mutex};

use reqwest::blocking::Client;
use serde_json::{Value, json};
use tessera_core::Tessera;
use tessera_core::api::CouponState;

/// `POST /v1/till/redemptions` of `code` by the till with `token`, under idempotency key `key`
/// (receipt `R-{key}`): the status and the answer.
pub fn redeem(
    http: &Client,
    server: &str,
    token: &str,
    key: &str,
    code: &str,
    basket: u64,
) -> (u16, Value) {
    let resp = http
        .post(format!("{server}/v1/till/redemptions"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&json!({"code": code, "receipt": format!("R-{key}"), "basket_cents": basket}))
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
}

/// A new coupon of `offer` in the member's wallet: clipped, synced, its code.
pub fn fresh_coupon(t: &Tessera, offer: &str) -> String {
    t.clip_offer(offer).unwrap();
    t.sync().unwrap();
    t.wallet()
        .unwrap()
        .into_iter()
        .find(|c| c.offer_id == offer && c.state == CouponState::Available)
        .expect("a coupon after the clip")
        .code
}

/// `trials` times, a fresh coupon from `fresh` redeemed by every till at once (`tills`: each
/// till's token and the server it reaches): asserts that each trial has exactly one success and
/// that every other till is told `already_redeemed`.
pub fn race(tills: Vec<(String, String)>, trials: usize, mut fresh: impl FnMut() -> String) {
    let n = tills.len();
    let code = Arc::new(Mutex::new(String::new()));
    let start = Arc::new(Barrier::new(n + 1));
    let done = Arc::new(Barrier::new(n + 1));
    let results: Arc<Mutex<Vec<(u16, String)>>> = Arc::default();
    let workers: Vec<_> = tills
        .into_iter()
        .enumerate()
        .map(|(i, (token, url))| {
            let (code, start, done, results) =
                (code.clone(), start.clone(), done.clone(), results.clone());
            std::thread::spawn(move || {
                let http = Client::new();
                for trial in 0..trials {
                    start.wait();
                    let c = code.lock().unwrap().clone();
                    let (status, body) =
                        redeem(&http, &url, &token, &format!("t{trial}-till{i}"), &c, 5000);
                    results
                        .lock()
                        .unwrap()
                        .push((status, body["code"].as_str().unwrap_or("").to_owned()));
                    done.wait();
                }
            })
        })
        .collect();
    for trial in 0..trials {
        *code.lock().unwrap() = fresh();
        results.lock().unwrap().clear();
        start.wait();
        done.wait();
        let r = results.lock().unwrap();
        let ok = r.iter().filter(|(s, _)| *s == 200).count();
        let refused = r
            .iter()
            .filter(|(s, c)| *s == 409 && c == "already_redeemed")
            .count();
        assert_eq!(
            (ok, refused),
            (1, n - 1),
            "trial {trial}: exactly one of {n} tills redeems, the others learn it: {r:?}"
        );
    }
    for w in workers {
        w.join().unwrap();
    }
}
