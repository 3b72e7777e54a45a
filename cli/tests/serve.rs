//! `tessera serve` and its operator credentials, as an operator starts it: refused off loopback
//! without a credential, the development token on loopback with a warning, named credentials
//! from a file of digests, rotated by SIGHUP without a restart.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path, args: &[&str]) -> (Serve, String) {
    let ready = dir.join("url");
    let _ = std::fs::remove_file(&ready);
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .args(args)
        .arg("--ready-file")
        .arg(&ready)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let serve = Serve(child);
    for _ in 0..300 {
        if let Ok(url) = std::fs::read_to_string(&ready)
            && !url.is_empty()
        {
            return (serve, url.replace("0.0.0.0", "127.0.0.1"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("tessera serve did not start");
}

fn admin_status(url: &str, token: &str) -> u16 {
    reqwest::blocking::Client::new()
        .get(format!("{url}/admin/v1/redemption-conflicts"))
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// `tessera admin-credential NAME`: (token, file line).
fn new_credential(name: &str) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["admin-credential", name])
        .output()
        .unwrap();
    assert!(out.status.success());
    // The file line alone on stdout (so that `>> operators.txt` makes a valid file), the token
    // on stderr.
    let line = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let token = String::from_utf8(out.stderr)
        .unwrap()
        .lines()
        .find_map(|l| l.split_once("(give it to the operator; it is not stored): "))
        .map(|(_, t)| t.to_owned())
        .unwrap();
    assert!(!line.contains('\n'), "{line}");
    assert!(
        !line.contains(&token),
        "the file holds a digest, not the token"
    );
    (token, line)
}

#[test]
fn off_loopback_without_a_credential_the_server_refuses_to_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without an operator credential"), "{err}");
    // Too short a token is refused too.
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--addr", "0.0.0.0:0", "--admin-token", "secret"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn on_loopback_the_development_token_works_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (mut serve, url) = start(dir.path(), &["--addr", "127.0.0.1:0"]);
    assert_eq!(admin_status(&url, "tessera-admin"), 200);
    let _ = serve.0.kill();
    let mut err = String::new();
    serve
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("development run"), "{err}");
}

#[test]
fn named_credentials_rotate_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, alice_line) = new_credential("alice");
    let (bob, bob_line) = new_credential("bob");
    let file = dir.path().join("operators.txt");
    std::fs::write(&file, format!("# operators\n{alice_line}\n")).unwrap();
    let (serve, url) = start(
        dir.path(),
        &[
            "--addr",
            "0.0.0.0:0",
            "--admin-credentials",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(admin_status(&url, &alice), 200);
    assert_eq!(admin_status(&url, &bob), 401);
    assert_eq!(admin_status(&url, "tessera-admin"), 401);
    // Bob is rolled in, Alice retired: SIGHUP, no restart.
    std::fs::write(&file, format!("{bob_line}\n")).unwrap();
    let pid = serve.0.id() as libc::pid_t;
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let mut rotated = false;
    for _ in 0..100 {
        if admin_status(&url, &bob) == 200 {
            rotated = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(rotated, "bob's credential in force after SIGHUP");
    assert_eq!(admin_status(&url, &alice), 401);
    // A broken file keeps the credentials in force.
    std::fs::write(&file, "bob sha256:nothex\n").unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(admin_status(&url, &bob), 200);
}
