//! `tessera demo`: what Tessera does, step by step, in a temporary database. Each later
//! capability adds its step here.

use std::path::PathBuf;
use std::time::Instant;

/// Timings printed by the demo say which build measured them: the README's figures are release
/// builds, and `cargo run` makes a debug one, several times slower.
const BUILD: &str = if cfg!(debug_assertions) {
    " (debug build; release figures in the README)"
} else {
    " (release build)"
};

use std::sync::Arc;

use anyhow::Result;
use tessera_core::barcode::analyse_card_number;
use tessera_core::consent::{Channel, ConsentText, Decision, Purpose};
use tessera_core::preferences::{NotificationRequest, NotificationVerdict, Preferences};
use tessera_core::privacy::ConsentChoice;
use tessera_core::{
    DeviceInfo, Error, EventKind, MemberCard, Program, Symbology, SyncError, Tessera,
};
use tessera_server::storage::Storage;
use tessera_server::storage::sqlite::SqliteStorage;
use tessera_server::{AppState, RunningServer, ServerConfig};

use crate::print_card;

fn step(n: u32, title: &str) {
    println!("\n── {n}. {title}");
}

pub fn run(keep: Option<PathBuf>) -> Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = match keep {
        Some(d) => {
            std::fs::create_dir_all(&d)?;
            d
        }
        None => temp.path().to_path_buf(),
    };
    let db = dir.join("tessera.db");
    println!("Tessera demo — database {}", db.display());

    step(1, "The programme: Maison Dupont, whose tills read EAN-13");
    let t = Tessera::open(&db)?;
    let program = t.set_program(&Program {
        id: "maison-dupont".into(),
        name: "Maison Dupont".into(),
        brand_color: "#0a7d5a".into(),
        symbology: Symbology::Ean13,
    })?;
    println!(
        "programme {} ({}), tills read {}",
        program.name, program.brand_color, program.symbology
    );

    step(
        2,
        "The member types the number from her plastic card: \"4006 3813 3393\"",
    );
    let analysis = analyse_card_number("4006 3813 3393")?;
    for s in &analysis.suggestions {
        let flag = if s.differs_from_printed { "≠" } else { "=" };
        let name = s.symbology.to_string();
        println!("  {flag} {name:<9} {:<15} {}", s.encoded_value, s.note);
    }
    println!("  (≠: a scanner would read something other than what was typed)");

    step(3, "A wrong check digit is refused before anything is drawn");
    let wrong = MemberCard {
        card_number: "4006381333932".into(),
        holder_name: "Ada Lovelace".into(),
        member_since: "2021-03-04".into(),
        tier_label: Some("Gold".into()),
    };
    match t.set_card(&wrong) {
        Err(e @ Error::CardNumber(_)) => println!("  refused: {e}"),
        other => anyhow::bail!("a wrong check digit was accepted: {other:?}"),
    }

    step(4, "Enrolled: the card screen");
    let card = MemberCard {
        card_number: "4006 3813 3393".into(),
        ..wrong
    };
    print_card(&t.set_card(&card)?);
    t.close();

    step(
        5,
        "At the till, offline: open the database cold and show the card",
    );
    let start = Instant::now();
    let t = Tessera::open(&db)?;
    let view = t.card()?;
    let elapsed = start.elapsed();
    println!(
        "  open + card() + {} matrix: {:.2} ms, no network{}",
        view.barcode.symbology,
        elapsed.as_secs_f64() * 1000.0,
        BUILD
    );

    step(6, "The same card for e-mails and print");
    let svg = dir.join("card.svg");
    let png = dir.join("card.png");
    std::fs::write(&svg, view.barcode.svg(4)?)?;
    std::fs::write(&png, view.barcode.png(4)?)?;
    println!("  {}\n  {}", svg.display(), png.display());
    t.close();

    sync_steps(&dir)?;

    println!("\nDone.");
    Ok(())
}

/// A reference server on loopback; stopped and started again on the same port and database to
/// play the network going away and coming back.
struct LocalServer {
    storage: SqliteStorage,
    addr: std::net::SocketAddr,
    running: Option<RunningServer>,
}

impl LocalServer {
    fn start(path: &std::path::Path) -> Result<Self> {
        let storage = SqliteStorage::open(path)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(storage.load_catalog(tessera_server::seed::catalog()?))?;
        let mut server = LocalServer {
            storage,
            addr: "127.0.0.1:0".parse()?,
            running: None,
        };
        server.resume()?;
        Ok(server)
    }

    fn resume(&mut self) -> Result<()> {
        let state = AppState::new(Arc::new(self.storage.clone()), ServerConfig::default());
        let running = RunningServer::start(self.addr, state, 2)?;
        self.addr = running.addr;
        self.running = Some(running);
        Ok(())
    }

    fn pause(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn sync_steps(dir: &std::path::Path) -> Result<()> {
    step(
        7,
        "A loyalty server on loopback, with 321 stores in 40 French cities",
    );
    let mut server = LocalServer::start(&dir.join("server.db"))?;
    println!("  {} (OpenAPI at /openapi.json)", server.url());

    step(8, "Chloé installs the app and enrols: card, catalog, state");
    let phone = Tessera::open(dir.join("phone.db"))?;
    let device = DeviceInfo {
        platform: tessera_core::api::Platform::Cli,
        app_version: env!("CARGO_PKG_VERSION").into(),
    };
    let view = phone.enrol(&server.url(), "Chloé Martin", device)?;
    println!(
        "  card {} ({}) for {}",
        view.display_number, view.barcode.symbology, view.holder_name
    );
    let report = phone.sync()?;
    println!(
        "  first sync: {} catalog changes (pages: {}), {} bytes",
        report.catalog_changes, report.catalog_pages, report.bytes_received
    );
    let lyon = phone.stores(Some("Lyon"), 3)?;
    for s in &lyon {
        println!("  cached: {} — {}, {}", s.name, s.address, s.city);
    }

    step(9, "In the metro, no network: she keeps using the app");
    server.pause();
    let store = lyon
        .first()
        .map(|s| s.id.clone())
        .ok_or_else(|| anyhow::anyhow!("the seed catalog has no store in Lyon"))?;
    phone.record_event(EventKind::AppOpened, None, Default::default())?;
    phone.record_event(
        EventKind::StoreVisit,
        Some(store.clone()),
        Default::default(),
    )?;
    phone.set_favourite_store(&store, true)?;
    match phone.sync() {
        Err(e @ SyncError::Offline) => println!("  sync: {e} (typed error, nothing lost)"),
        other => anyhow::bail!("a sync with the server down answered {other:?}"),
    }
    let status = phone.sync_status()?;
    println!(
        "  {} actions wait on the phone; the catalog is still read from the cache ({} stores)",
        status.pending,
        phone.catalog_summary()?.stores
    );

    step(
        10,
        "Back online: one sync delivers everything, exactly once",
    );
    server.resume()?;
    let report = phone.sync()?;
    println!(
        "  sent {}, already there {}, refused {}; {} requests",
        report.pushed, report.replayed, report.rejected, report.requests
    );
    let again = phone.sync()?;
    println!(
        "  a second sync sends {} and costs {} request (nothing changed)",
        again.pushed, again.requests
    );

    step(11, "The server's view: nothing lost, nothing twice");
    let state = phone
        .member_state()?
        .ok_or_else(|| anyhow::anyhow!("no member state after sync"))?
        .state;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let events = rt.block_on(server.storage.event_ids(state.member_id.clone()))?;
    let twice = events.iter().filter(|(_, n)| *n > 1).count();
    println!(
        "  {} events held, {} applied twice; favourite stores {:?}; tier {}, {} points",
        events.len(),
        twice,
        state.favourite_store_ids,
        state.tier,
        state.points_balance
    );
    anyhow::ensure!(
        events.len() == 2 && twice == 0 && state.favourite_store_ids == [store],
        "the server does not hold exactly what the member did"
    );
    consent_steps(&mut server, &phone, &rt)?;
    phone.close();
    server.pause();
    Ok(())
}

/// `QuietHours` → "quiet hours".
fn words(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

fn verdict(v: &NotificationVerdict) -> String {
    match v {
        NotificationVerdict::Send => "shown".into(),
        NotificationVerdict::NoConsent { feature } => {
            format!("blocked: no consent ({})", words(&format!("{feature:?}")))
        }
        NotificationVerdict::NotOfInterest => "blocked: not among her interests".into(),
        other => format!("blocked: {other:?}"),
    }
}

fn consent_steps(
    server: &mut LocalServer,
    phone: &Tessera,
    rt: &tokio::runtime::Runtime,
) -> Result<()> {
    let text = ConsentText {
        version: "consent-2026-11".into(),
        text: "Maison Dupont would like to send you offers by push and to choose them from \
               your visits and favourite stores. You can change your mind at any time."
            .into(),
    };
    let tea = NotificationRequest {
        purpose: Purpose::MarketingOffers,
        channel: Channel::Push,
        categories: vec!["tea".into()],
    };
    let coffee = NotificationRequest {
        categories: vec!["coffee".into()],
        ..tea.clone()
    };
    let audience = |server: &LocalServer| -> Result<usize> {
        Ok(rt
            .block_on(
                server
                    .storage
                    .audience(Purpose::MarketingOffers, Channel::Push),
            )?
            .len())
    };

    step(
        12,
        "Consent is opt-in: nothing reaches Chloé before she chooses",
    );
    println!(
        "  push about a tea offer: {}",
        verdict(&phone.claim_notification(&tea)?)
    );
    let offers = phone.offers(3)?;
    println!(
        "  offers screen: {} offers, personalised: {}",
        offers.offers.len(),
        offers.personalised
    );

    step(
        13,
        "She allows offers by push and personalisation, and says she likes tea and pastry",
    );
    let grant = |purpose, channel| ConsentChoice {
        purpose,
        channel,
        decision: Decision::Granted,
    };
    phone.record_consent(
        &[
            grant(Purpose::MarketingOffers, Channel::Push),
            grant(Purpose::Personalisation, Channel::InApp),
        ],
        &text,
    )?;
    phone.set_preferences(&Preferences {
        interests: vec!["tea".into(), "pastry".into()],
        quiet_hours: None,
        timezone: "Europe/Paris".into(),
        language: "fr-FR".into(),
        ..phone.preferences()?
    })?;
    println!(
        "  push about a tea offer: {}",
        verdict(&phone.claim_notification(&tea)?)
    );
    println!(
        "  push about a coffee offer: {}",
        verdict(&phone.claim_notification(&coffee)?)
    );
    let offers = phone.offers(3)?;
    println!("  offers screen, personalised: {}", offers.personalised);
    for o in &offers.offers {
        println!("    {} [{}]", o.title, o.categories.join(", "));
    }
    phone.sync()?;
    println!(
        "  synced: the server may target {} member(s) with push offers",
        audience(server)?
    );

    step(
        14,
        "No network, and she changes her mind: one call withdraws everything",
    );
    server.pause();
    let withdrawn = phone.withdraw_all_consents(&text)?;
    println!(
        "  {} consents withdrawn, effective now on the phone",
        withdrawn.len()
    );
    println!(
        "  push about a tea offer: {}",
        verdict(&phone.claim_notification(&tea)?)
    );
    println!(
        "  offers screen, personalised: {}",
        phone.offers(3)?.personalised
    );
    server.resume()?;
    phone.sync()?;
    let targeted = audience(server)?;
    println!(
        "  back online and synced: the server may target {targeted} member(s) with push offers"
    );
    anyhow::ensure!(
        targeted == 0,
        "the server still targets a member who withdrew"
    );

    step(15, "Her rights: everything held about her, then erasure");
    let export: serde_json::Value = serde_json::from_str(&phone.export_my_data()?)?;
    let count = |v: &serde_json::Value| v.as_array().map_or(0, |a| a.len());
    println!(
        "  export: {} events and {} consent records on the server, {} on the phone",
        count(&export["server"]["events"]),
        count(&export["server"]["member"]["consents"]),
        count(&export["device"]["consent_records"])
    );
    let member = phone
        .sync_status()?
        .member_id
        .ok_or_else(|| anyhow::anyhow!("no member"))?;
    let receipt = phone.erase_member()?;
    let left = rt.block_on(server.storage.export(member, 0))?;
    println!(
        "  erased: server holds her data: {}; {} consent records kept detached as proof; phone enrolled: {}",
        left.is_some(),
        receipt.consent_records_anonymised,
        phone.sync_status()?.enrolled
    );
    anyhow::ensure!(left.is_none(), "the server still holds the erased member");

    let (_lea_dir, lea) = walk_step(server)?;
    till_steps(server, &lea, rt)?;
    lea.close();
    Ok(())
}

/// Step 16: a member walks across Paris on a Saturday morning with geofences on. Returns her
/// phone (and the directory it lives in) for the till steps.
fn walk_step(server: &LocalServer) -> Result<(tempfile::TempDir, Tessera)> {
    use tessera_core::nearby::{OfferSettings, RegionAction};
    use tessera_core::simulate::{PARIS_WALK, path, walk};

    step(
        16,
        "Saturday morning, Léa walks across Paris with the app in her pocket",
    );
    let dir = tempfile::tempdir()?;
    let phone = Tessera::open(dir.path().join("lea.db"))?;
    phone.enrol(
        &server.url(),
        "Léa Bernard",
        DeviceInfo {
            platform: tessera_core::Platform::Ios,
            app_version: env!("CARGO_PKG_VERSION").into(),
        },
    )?;
    phone.sync()?;
    let grant = |purpose, channel| ConsentChoice {
        purpose,
        channel,
        decision: Decision::Granted,
    };
    phone.record_consent(
        &[
            grant(Purpose::GeolocatedOffers, Channel::Location),
            grant(Purpose::GeolocatedOffers, Channel::Push),
        ],
        &ConsentText {
            version: "geo-2026-11".into(),
            text: "Tell me about offers when I pass one of your shops.".into(),
        },
    )?;
    phone.set_preferences(&Preferences {
        timezone: "Europe/Paris".into(),
        caps: vec![tessera_core::preferences::FrequencyCap {
            channel: Channel::Push,
            per_day: Some(3),
            per_week: None,
        }],
        ..phone.preferences()?
    })?;
    // The walk runs on a simulated clock: next Saturday from 10:00, Paris time.
    phone.set_offer_settings(OfferSettings {
        max_event_age_ms: 8 * 86_400_000,
        ..OfferSettings::default()
    });
    let paris = jiff::tz::TimeZone::get("Europe/Paris")?;
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(paris.clone())
        .date();
    let ahead = (5 - today.weekday().to_monday_zero_offset() + 7) % 7;
    let saturday = today.checked_add(jiff::Span::new().days(i64::from(ahead)))?;
    let start = saturday
        .at(10, 0, 0, 0)
        .to_zoned_datetime(paris)?
        .timestamp()
        .as_millisecond();
    let steps = path(&PARIS_WALK, 25.0, start, 20_000);
    let report = walk(&phone, &steps, 20, 120_000)?;
    println!(
        "  {} positions over {:.1} km, {} plans, at most {} regions registered (iOS allows 20)",
        steps.len(),
        steps.len() as f64 * 25.0 / 1000.0,
        report.plans,
        report.max_registered
    );
    for e in report.notified() {
        if let RegionAction::Notify { notification } = &e.action {
            let at = jiff::Timestamp::from_millisecond(e.at_ms)?
                .to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Paris")?);
            println!(
                "  {} notified: {} — {}",
                at.strftime("%H:%M"),
                notification.title,
                notification.body
            );
        }
    }
    let suppressed: Vec<String> = report
        .suppressed()
        .iter()
        .map(|(reason, n)| format!("{n} × {}", words(reason)))
        .collect();
    println!("  not notified: {}", suppressed.join(", "));
    let visits = report.events.iter().filter(|e| e.visit_recorded).count();
    let sent = phone.sync()?.pushed;
    println!("  {visits} store visits recorded on the way, {sent} actions synced");
    anyhow::ensure!(
        report.max_registered <= 20 && report.notified().count() > 0,
        "the walk did not behave: {report:?}"
    );

    Ok((dir, phone))
}

/// Steps 17–19: coupons at tills online and offline, and store-to-web with points.
fn till_steps(
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
    rt.block_on(server.storage.put_loyalty_rules(rules, 0))?;
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

/// Step 20: a challenge moves with her purchases, offline on her phone and on the server, and
/// pays its reward when the third product is bought.
fn challenge_step(phone: &Tessera, paris: &tessera_till::Till) -> Result<()> {
    use tessera_core::api::{PointsKind, PurchaseLine, PurchaseRequest};
    use tessera_till::Done;

    step(
        20,
        "A challenge: three different products from the autumn collection this month",
    );
    let show = |when: &str| -> Result<()> {
        let view = phone.challenges()?;
        for c in &view.challenges {
            println!(
                "  {when}: {} — {}/{}{}{}",
                c.title,
                c.done,
                c.target,
                if c.completed { ", completed" } else { "" },
                if view.estimated { " (estimate)" } else { "" }
            );
        }
        Ok(())
    };
    show("Léa's app")?;
    let Done::Online(receipt) = paris.record_purchase(&PurchaseRequest {
        receipt: "R-000131".into(),
        card_number: Some(phone.card()?.card_number),
        lines: vec![PurchaseLine {
            sku: "sku-autumn-blend".into(),
            category: Some("tea".into()),
            collection: Some("autumn".into()),
            quantity: 1,
            amount_cents: 1450,
        }],
        total_cents: 1450,
        occurred_offline_at: None,
    })?
    else {
        anyhow::bail!("the purchase did not reach the server");
    };
    println!(
        "  Paris till: the autumn blend, 14.50 € — balance {} (14 earned + the challenge's reward)",
        receipt.points_balance
    );
    phone.sync()?;
    show("after sync")?;
    let view = phone.challenges()?;
    let bonus: i64 = phone
        .points()?
        .ledger
        .iter()
        .filter(|e| e.kind == PointsKind::Bonus)
        .map(|e| e.points)
        .sum();
    for b in &view.badges {
        println!("  badge earned: {} ({}), {}", b.badge, b.title, b.earned_at);
    }
    println!("  challenge reward paid once: {bonus} points");
    anyhow::ensure!(
        bonus == 150 && view.badges.len() == 1,
        "the challenge did not pay its reward once"
    );
    Ok(())
}

/// A short random suffix for demo till tokens.
fn uuid_like() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{t:x}")
}
