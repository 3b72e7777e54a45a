//! The storage conformance suite: what every backend of [`Storage`] must do, as tests any
//! backend instantiates with [`storage_conformance!`](crate::storage_conformance). It covers every
//! operation of the trait, including concurrent redemption and idempotency replay. SQLite runs
//! it in CI (`storage::sqlite`'s tests); a PostgreSQL backend is held to the same suite.
//!
//! Each test gets a fresh, empty backend. Times are fixed ([`NOW`]), never the wall clock.
// Test code: a failed step panics with its cause.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod analytics;
mod catalog;
mod journeys;
mod kpis;
mod members;
mod money;
mod webhooks;

pub use analytics::*;
pub use catalog::*;
pub use journeys::*;
pub use kpis::*;
pub use members::*;
pub use money::*;
pub use webhooks::*;

use std::sync::Arc;

use serde_json::json;
use tessera_domain::MemberCard;
use tessera_domain::catalog::Catalog;

use crate::service::Services;
use crate::storage::{MutationOutcome, NewEnrolment, Storage, StoredAnswer, TokenHashes};

/// The suite's "now": 2026-09-21T14:13:20Z, inside every offer's dates.
pub const NOW: i64 = 1_790_000_000_000;
pub(crate) const DAY: i64 = 86_400_000;

/// Instantiates the suite for a backend: one `#[tokio::test]` per operation group, each on a
/// fresh backend made by `$make` (an expression giving an `impl Storage`, which may `.await`);
/// `optional $make` takes an `Option<impl Storage>`, and `None` skips the test (the expression
/// says why, out loud).
#[macro_export]
macro_rules! storage_conformance {
    // `$make` gives an `Option<impl Storage>`: `None` skips the test (it says why itself).
    (optional $make:expr) => {
        $crate::storage_conformance!(@names optional $make);
    };
    ($make:expr) => {
        $crate::storage_conformance!(@names required $make);
    };
    (@names $how:ident $make:expr) => {
        $crate::storage_conformance!(@tests $how $make;
            catalog_entities_round_trip_through_the_feed,
            a_catalog_load_replaces_everything_and_an_import_is_all_or_nothing,
            enrolment_tokens_and_the_member_state,
            a_mutation_applies_once_per_key_and_replays_its_answer,
            a_transaction_commits_whole_or_not_at_all,
            preferences_analytics_joins_and_badges,
            concurrent_requests_with_one_key_apply_once,
            keys_are_purged_by_age,
            consent_audience_export_and_erasure,
            campaigns_reach_consenting_devices_once,
            coupon_keys_shops_and_tills,
            a_coupon_is_redeemed_once_by_concurrent_tills,
            offline_redemptions_at_two_tills_record_a_conflict,
            purchases_returns_voids_and_corrections_keep_the_points,
            a_void_restores_coupons_and_revokes_the_web_coupon,
            challenges_are_stored_and_reported_events_evaluated,
            concurrent_spends_and_earnings_lose_no_update,
            heartbeats_count_the_live_processes,
            lapses_reach_members_who_do_not_come_back,
            kept_rule_engines_and_counted_ids,
            device_certificates_are_revoked_and_listed_until_they_expire,
            wallet_passes_are_marked_stale_registered_and_forgotten,
            webhook_deliveries_are_claimed_in_order_retried_and_replayed,
            the_programme_s_changes_write_their_events,
            kpi_counters_follow_every_change,
            redemptions_across_channels_are_counted,
            analytics_read_the_tills_and_publish_by_generation,
            journeys_enter_once_and_send_within_the_member_s_policy,
            members_consent_and_opened_pushes_are_counted,
        );
    };
    (@tests required $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let storage: std::sync::Arc<dyn $crate::storage::Storage> =
                    std::sync::Arc::new($make);
                $crate::conformance::$name(storage).await;
            }
        )*
    };
    (@tests optional $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some(storage) = ($make) else { return };
                let storage: std::sync::Arc<dyn $crate::storage::Storage> =
                    std::sync::Arc::new(storage);
                $crate::conformance::$name(storage).await;
            }
        )*
    };
}

/// The backend under test.
pub type Backend = Arc<dyn Storage>;

/// A small programme: two shops (one tagged `cafe`), an offer to clip once, one for cafés, one
/// with no limit, and a reward bought with points.
pub fn catalog() -> Catalog {
    let store = |id: &str, city: &str, tags: &[&str]| {
        json!({"id": id, "name": format!("Tessera {city}"), "address": "1 rue de la Paix",
            "postcode": "75001", "city": city, "country": "FR", "latitude": 48.86,
            "longitude": 2.33, "radius_m": 150, "timezone": "Europe/Paris",
            "opening_hours": [], "tags": tags})
    };
    let offer = |id: &str, extra: serde_json::Value| {
        let mut o = json!({"id": id, "title": format!("Offer {id}"), "description": "At the till.",
            "kind": {"type": "gift", "item": "a tin of tea"},
            "valid_from": "2026-01-01T00:00:00Z", "valid_to": "2027-12-31T23:59:59Z",
            "channel": "both", "days": [], "store_ids": [], "store_tags": [], "categories": [],
            "tiers": [], "segments": [], "min_basket_cents": null, "per_member_limit": null,
            "requires_clip": true});
        o.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        o
    };
    serde_json::from_value(json!({
        "program": {"id": "conformance", "name": "Conformance", "brand_color": "#2E5E4E",
            "symbology": "code128"},
        "stores": [store("st-a", "Paris", &["cafe"]), store("st-b", "Lyon", &[])],
        "offers": [
            offer("of-once", json!({"per_member_limit": 1})),
            offer("of-cafe", json!({"store_tags": ["cafe"]})),
            offer("of-any", json!({})),
            offer("of-reward", json!({"points_cost": 20, "requires_clip": false})),
        ],
    }))
    .expect("the suite's catalog")
}

/// The backend with [`catalog`] loaded.
pub async fn seeded(s: &Backend) {
    s.load_catalog(catalog()).await.expect("load the catalog");
}

/// Enrol member `n`: id `m-n`, device `d-n`, card `CARD-n`, access token hash `a-n` (valid
/// an hour from [`NOW`]), refresh hash `r-n`.
pub async fn enrol(s: &Backend, n: u32) -> String {
    let member = format!("m-{n}");
    s.enrol(NewEnrolment {
        member_id: member.clone(),
        device_id: format!("d-{n}"),
        card: MemberCard {
            card_number: format!("CARD-{n}"),
            holder_name: format!("Member {n}"),
            member_since: "2026-09-21".into(),
            tier_label: None,
        },
        platform: "android".into(),
        app_version: "1.0".into(),
        tokens: TokenHashes {
            access_hash: format!("a-{n}"),
            access_expires_ms: NOW + 3_600_000,
            refresh_hash: format!("r-{n}"),
            refresh_expires_ms: NOW + 90 * DAY,
        },
    })
    .await
    .expect("enrol");
    member
}

/// The answer a mutation or a till operation stored: applied now or replayed.
pub fn answer(outcome: &MutationOutcome) -> &StoredAnswer {
    match outcome {
        MutationOutcome::Applied(a) | MutationOutcome::Replayed(a) => a,
        MutationOutcome::KeyReused => panic!("the key was reused"),
    }
}

/// A stored answer's body as JSON.
pub fn body(a: &StoredAnswer) -> serde_json::Value {
    serde_json::from_str(&a.body).expect("a stored answer is JSON")
}

/// Apply a mutation given as JSON; its body hash is the JSON text.
pub async fn mutate(
    s: &Backend,
    member: &str,
    key: &str,
    mutation: serde_json::Value,
) -> MutationOutcome {
    let hash = mutation.to_string();
    s.apply_mutation(
        member.into(),
        key.into(),
        hash,
        serde_json::from_value(mutation).expect("a mutation"),
        NOW,
    )
    .await
    .expect("apply the mutation")
}

/// A `record_event` mutation.
pub fn event(id: &str) -> serde_json::Value {
    json!({"type": "record_event", "event": {"event_id": id, "kind": "app_opened",
        "occurred_at": "2026-09-21T12:00:00Z"}})
}
