//! `tessera demo` runs from start to end, and its sync steps show what they claim: the server
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
