//! `tessera demo` runs from start to end, and its sync and consent steps show what they claim: the server
//! down is a typed offline error, and after the network returns the server holds every action
//! once (the demo itself checks this against the server's database and fails otherwise).

use std::process::Command;

#[test]
fn the_demo_runs_and_delivers_the_offline_actions_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["demo", "--keep"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("sync: the server cannot be reached"),
        "{text}"
    );
    assert!(text.contains("3 actions wait on the phone"), "{text}");
    assert!(
        text.contains("sent 3, already there 0, refused 0"),
        "{text}"
    );
    assert!(text.contains("2 events held, 0 applied twice"), "{text}");
    // Consent: blocked before, shown after a grant, blocked again after the offline withdrawal,
    // and the server stops targeting; erasure leaves nothing on either side.
    assert!(
        text.contains("push about a tea offer: blocked: no consent"),
        "{text}"
    );
    assert!(text.contains("push about a tea offer: shown"), "{text}");
    assert!(
        text.contains("push about a coffee offer: blocked: not among her interests"),
        "{text}"
    );
    assert!(text.contains("the server may target 1 member(s)"), "{text}");
    assert!(text.contains("the server may target 0 member(s)"), "{text}");
    assert!(text.contains("server holds her data: false"), "{text}");
    // The walk: within the iOS budget, some notifications, every one explained.
    assert!(
        text.contains("at most 20 regions registered (iOS allows 20)")
            || text.contains("regions registered (iOS allows 20)"),
        "{text}"
    );
    assert!(text.contains(" notified: "), "{text}");
    // The till: one redemption, the second till refused with where and when, a forgery refused.
    assert!(text.contains("Paris till: redeemed at"), "{text}");
    assert!(
        text.contains("Lyon till: refused — already redeemed at st-paris-01"),
        "{text}"
    );
    assert!(text.contains("a forged copy: refused offline"), "{text}");
    // Offline tills: both honour the coupon, a rescan is refused from the journal, and after
    // reconnecting one report counts and the other is a recorded conflict.
    assert!(
        text.contains("Lyon till, offline: signature checked, honoured and journaled"),
        "{text}"
    );
    assert!(
        text.contains("the same code scanned again offline: refused"),
        "{text}"
    );
    assert!(
        text.contains("1 accepted, 1 conflict; the merchant's review lists 1 conflict(s)"),
        "{text}"
    );
    // Store-to-web: points, a web coupon redeemed at the web checkout, a return.
    assert!(
        text.contains("45.99 € with her card — 45 points, balance 45, web coupon: true"),
        "{text}"
    );
    assert!(text.contains("web checkout: redeemed at"), "{text}");
    assert!(text.contains("13 points taken back"), "{text}");
    assert!(text.contains("Léa's app: 32 points; Member tier"), "{text}");
    // A challenge: 2 of 3 after step 19's purchase, completed by the third product, paid once.
    assert!(
        text.contains("Léa's app: Three from the autumn collection — 2/3"),
        "{text}"
    );
    assert!(
        text.contains("after sync: Three from the autumn collection — 3/3, completed"),
        "{text}"
    );
    assert!(text.contains("badge earned: autumn-leaf"), "{text}");
    // Written for people: no Rust debug output (`{"Cooldown": 5}`, `Redeemed { store_id: … }`).
    for debug in ["{\"", " { ", "Some("] {
        assert!(!text.contains(debug), "debug output ({debug}) in:\n{text}");
    }
    assert!(
        text.contains("challenge reward paid once: 150 points"),
        "{text}"
    );
    for file in [
        "tessera.db",
        "phone.db",
        "server.db",
        "card.svg",
        "card.png",
    ] {
        assert!(dir.path().join(file).exists(), "{file} kept");
    }
}

#[test]
fn the_member_shell_records_consent_and_preferences_offline() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let tessera = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("member")
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Consent needs a member.
    let (ok, _, err) = tessera(&["consent", "grant", "analytics", "in_app"]);
    assert!(!ok, "consent without a member is refused");
    assert!(err.contains("enrolled"), "{err}");
    // Unknown purposes and channels are refused with the valid ones listed.
    let (ok, _, err) = tessera(&["consent", "grant", "telepathy", "push"]);
    assert!(!ok && err.contains("marketing_offers"), "{err}");
    let (ok, _, err) = tessera(&["preferences", "--quiet", "22h"]);
    assert!(!ok && err.contains("HH:MM-HH:MM"), "{err}");
}
