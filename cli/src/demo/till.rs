//! The wallet and the till: clip, redeem once, offline, points and rewards.

use std::time::Instant;
use tessera_server::service::Services;

use anyhow::Result;
use tessera_core::Tessera;
use tessera_server::storage::Storage;

use super::*;

/// Steps 17–19: coupons at tills online and offline, and store-to-web with points.
pub(super) fn till_steps(
    server: &mut LocalServer,
    phone: &Tessera,
    rt: &tokio::runtime::Runtime,
) -> Result<()> {
    use tessera_core::api::{CouponState, PurchaseLine, PurchaseRequest, ReturnRequest};
    use tessera_till::{Done, Till};

    step(
        17,
        "Web-to-store: Léa clips an offer, a till in Paris redeems it, a till in Lyon tries again",
    );
    let journals = tempfile::tempdir()?;
    let clip = |offer: &str| -> Result<tessera_core::api::WalletCoupon> {
        phone.clip_offer(offer)?;
        phone.sync()?;
        phone
            .wallet()?
            .into_iter()
            .find(|c| c.offer_id == offer && c.state == CouponState::Available)
            .ok_or_else(|| anyhow::anyhow!("no coupon after the clip"))
    };
    let coupon = clip("of-009")?;
    println!(
        "  wallet: coupon {} ({} characters, shown as a QR code)",
        coupon.coupon_id,
        coupon.code.len()
    );
    let till_for = |server: &LocalServer, store: &str, name: &str| -> Result<Till> {
        let token = format!("demo-till-{name}-{}", uuid_like());
        let hash = tessera_server::auth::hash_token(&token);
        rt.block_on(server.storage.register_till(store.to_owned(), hash, 0))?
            .ok_or_else(|| anyhow::anyhow!("no shop {store}"))?;
        Ok(Till::open(
            journals.path().join(format!("{name}.journal")),
            &server.url(),
            &token,
            store,
            tessera_core::sync::ReqwestClient::shared(),
        )?)
    };
    let paris = till_for(server, "st-paris-01", "paris")?;
    let lyon = till_for(server, "st-lyon-01", "lyon")?;
    let started = Instant::now();
    paris.verify(&coupon.code, None, 2500)?;
    println!(
        "  Paris till, offline check (signature, dates, shop, basket): {:.0} µs{BUILD}",
        started.elapsed().as_secs_f64() * 1e6
    );
    match paris.redeem(&coupon.code, 2500, "R-000117")? {
        Done::Online(done) => println!("  Paris till: redeemed at {}", done.redeemed_at),
        Done::Offline => anyhow::bail!("the server is up, yet the Paris till went offline"),
    }
    match lyon.redeem(&coupon.code, 2500, "R-000042") {
        Err(e) => println!("  Lyon till: refused — {e}"),
        Ok(r) => anyhow::bail!("redeemed twice: {r:?}"),
    }
    let mut forged = coupon.code.clone().into_bytes();
    let i = forged.len() - 10;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    match paris.verify(&String::from_utf8(forged)?, None, 2500) {
        Err(e) => println!("  a forged copy: refused offline — {e}"),
        Ok(_) => anyhow::bail!("a forged coupon was accepted"),
    }
    phone.sync()?;
    if let Some(c) = phone
        .wallet()?
        .into_iter()
        .find(|c| c.coupon_id == coupon.coupon_id)
    {
        let state = match &c.state {
            CouponState::Redeemed {
                store_id,
                redeemed_at,
            } => format!("redeemed at {store_id} on {redeemed_at}"),
            CouponState::Available => "available".to_owned(),
            CouponState::Expired => "expired".to_owned(),
            CouponState::Revoked => "revoked".to_owned(),
        };
        println!("  Léa's wallet after sync: the coupon is {state}");
    }

    step(
        18,
        "The network goes down: tills in Lyon and Marseille both honour one coupon offline",
    );
    let coupon = clip("of-009")?;
    let marseille = till_for(server, "st-marseille-13", "marseille")?;
    server.pause();
    for (name, till, receipt) in [
        ("Lyon", &lyon, "R-000043"),
        ("Marseille", &marseille, "R-000901"),
    ] {
        match till.redeem(&coupon.code, 2500, receipt)? {
            Done::Offline => println!(
                "  {name} till, offline: signature checked, honoured and journaled ({} to report)",
                till.pending()?
            ),
            Done::Online(_) => anyhow::bail!("the server is down, yet {name} reached it"),
        }
    }
    match lyon.redeem(&coupon.code, 2500, "R-000044") {
        Err(e) => println!("  Lyon till, the same code scanned again offline: refused — {e}"),
        Ok(r) => anyhow::bail!("a till honoured one code twice: {r:?}"),
    }
    server.resume()?;
    println!("  the network is back; both tills report (the first report to arrive counts)");
    let mut conflicts = 0;
    for (name, till) in [("Marseille", &marseille), ("Lyon", &lyon)] {
        let report = till.sync()?;
        conflicts += report.conflicts.len();
        match report.conflicts.first() {
            None => println!("  {name} till: {} accepted", report.accepted),
            Some(c) => println!(
                "  {name} till: conflict — the coupon counted at {}",
                c.detail.as_deref().unwrap_or("?")
            ),
        }
    }
    let review = rt.block_on(server.storage.redemption_conflicts(10))?;
    println!(
        "  1 accepted, {conflicts} conflict; the merchant's review lists {} conflict(s)",
        review.len()
    );
    anyhow::ensure!(
        conflicts == 1 && review.len() == 1,
        "offline reconciliation went wrong"
    );

    step(
        19,
        "Store-to-web: Léa buys in Paris, earns points and a coupon for the website",
    );
    let mut rules = rt.block_on(server.storage.loyalty_rules())?;
    rules.web_coupon = Some(tessera_core::loyalty::WebCouponRule {
        min_total_cents: 4000,
        offer_id: "of-005".into(),
    });
    let note = "the demo: a web coupon from 40 euros".to_owned();
    rt.block_on(
        server
            .storage
            .put_loyalty_rules(rules, "operator".into(), note, 0),
    )?
    .ok_or_else(|| anyhow::anyhow!("the web coupon's offer is not in the catalog"))?;
    // The programme runs a challenge this month; phones get it with the catalog feed.
    let challenge: tessera_core::rules::RuleSet = serde_json::from_value(serde_json::json!({
        "version": 1,
        "challenges": [{
            "id": "autumn-three", "title": "Three from the autumn collection",
            "description": "Buy three different autumn products this month",
            "badge": "autumn-leaf",
            "window": {"type": "calendar_month"},
            "goal": {"type": "distinct", "of": "sku", "target": 3,
                     "filter": {"kinds": ["purchase"], "collections": ["autumn"]}},
            "reward": {"type": "points", "points": 150}
        }]
    }))?;
    rt.block_on(server.storage.put_challenge_rules(challenge))?;
    let card = phone.card()?.card_number;
    let line = |sku: &str, cents| PurchaseLine {
        sku: sku.into(),
        category: Some("tea".into()),
        collection: Some("autumn".into()),
        quantity: 1,
        amount_cents: cents,
    };
    let bought = PurchaseRequest {
        receipt: "R-000118".into(),
        card_number: Some(card),
        member_code: None,
        lines: vec![line("sku-teapot", 3200), line("sku-darjeeling", 1399)],
        total_cents: 4599,
        occurred_offline_at: None,
    };
    let Done::Online(receipt) = paris.record_purchase(&bought)? else {
        anyhow::bail!("the purchase did not reach the server");
    };
    println!(
        "  Paris till: 45.99 € with her card — {} points, balance {}, web coupon: {}",
        receipt.points_earned,
        receipt.points_balance,
        receipt.web_coupon.is_some()
    );
    let web = till_for(server, "web", "web")?;
    if let Some(code) = &receipt.web_coupon {
        match web.redeem(code, 5000, "W-7731")? {
            Done::Online(r) => println!("  web checkout: redeemed at {}", r.redeemed_at),
            Done::Offline => anyhow::bail!("the web checkout went offline"),
        }
    }
    let Done::Online(back) = paris.return_goods(&ReturnRequest {
        receipt: "R-000118".into(),
        store_id: None,
        refunded_cents: 1399,
    })?
    else {
        anyhow::bail!("the return did not reach the server");
    };
    println!(
        "  the Darjeeling comes back: {} points taken back",
        back.points_reversed
    );
    phone.sync()?;
    let points = phone.points()?;
    if let Some(tier) = phone.tier_progress()? {
        println!(
            "  Léa's app: {} points; {} tier, {} points to {}",
            points.balance,
            tier.tier,
            tier.points_to_next,
            tier.next_tier.as_deref().unwrap_or("the top")
        );
    }
    challenge_step(phone, &paris)
}

/// A short random suffix for demo till tokens.
pub(super) fn uuid_like() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{t:x}")
}
