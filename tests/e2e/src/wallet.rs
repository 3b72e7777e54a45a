//! Wallet fixtures: a test CA with a WWDR-like intermediate and a pass type certificate (made
//! with the `openssl` command, as an operator would), pass images, a Google service account key,
//! the operator's wallet settings file; and a stand-in on loopback for what cannot be reached
//! from here: Google's token endpoint and Wallet API, and APNs. It records every request.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};

pub const PASS_TYPE_ID: &str = "pass.app.tessera.test";
pub const TEAM_ID: &str = "TESSERA123";
pub const ISSUER_ID: &str = "3388000000022000000";
pub const CLIENT_EMAIL: &str = "wallet@tessera-test.iam.gserviceaccount.com";

/// Run `openssl` with `args` in `dir`; panics with its output on failure.
pub fn openssl(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A PNG of `w`×`h` pixels.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().unwrap();
        let data: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        writer.write_image_data(&data).unwrap();
    }
    out
}

/// The files an operator supplies, made in a directory.
#[derive(Debug)]
pub struct WalletFixture {
    pub dir: tempfile::TempDir,
    /// The operator's settings file (`--wallet-config`).
    pub config: PathBuf,
    /// The test root CA (what `openssl cms -verify -CAfile` trusts).
    pub root: PathBuf,
    /// The service account's public key (PEM), to check the JWTs it signs.
    pub google_public: PathBuf,
}

impl WalletFixture {
    /// Certificates, keys, images and settings; Google's and APNs' addresses are `stand_in`,
    /// the PassKit web service `web_service_url`.
    pub fn make(stand_in: &str, web_service_url: &str) -> WalletFixture {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ca_ext = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n";
        std::fs::write(d.join("ca.ext"), ca_ext).unwrap();
        std::fs::write(
            d.join("leaf.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "root.key",
                "-out",
                "root.pem",
                "-days",
                "2",
                "-subj",
                "/CN=Tessera Test Root CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "wwdr.key",
                "-out",
                "wwdr.csr",
                "-subj",
                "/CN=Test Worldwide Developer Relations/OU=G4/O=Tessera Test",
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "wwdr.csr",
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-set_serial",
                "2",
                "-out",
                "wwdr.pem",
                "-days",
                "2",
                "-extfile",
                "ca.ext",
            ],
        );
        let subject = format!(
            "/UID={PASS_TYPE_ID}/CN=Pass Type ID: {PASS_TYPE_ID}/OU={TEAM_ID}/O=Tessera Test"
        );
        openssl(
            d,
            &[
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "pass.key", "-out", "pass.csr",
                "-subj", &subject,
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "pass.csr",
                "-CA",
                "wwdr.pem",
                "-CAkey",
                "wwdr.key",
                "-set_serial",
                "3",
                "-out",
                "pass.pem",
                "-days",
                "2",
                "-extfile",
                "leaf.ext",
            ],
        );
        // The Google service account's key.
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "sa.key",
            ],
        );
        openssl(d, &["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
        let account = serde_json::json!({
            "type": "service_account",
            "project_id": "tessera-test",
            "private_key_id": "kid-1",
            "private_key": std::fs::read_to_string(d.join("sa.key")).unwrap(),
            "client_email": CLIENT_EMAIL,
            "token_uri": format!("{stand_in}/token"),
        });
        std::fs::write(d.join("sa.json"), account.to_string()).unwrap();
        std::fs::create_dir(d.join("images")).unwrap();
        for (name, w, h) in [
            ("icon.png", 29, 29),
            ("icon@2x.png", 58, 58),
            ("logo.png", 160, 50),
            ("logo@2x.png", 320, 100),
        ] {
            std::fs::write(d.join("images").join(name), png(w, h)).unwrap();
        }
        let settings = serde_json::json!({
            "branding": {
                "programme_name": "Tessera Club",
                "organization_name": "Maison Tessera",
                "foreground": [255, 255, 255],
                "background": [20, 40, 80],
                "label": [200, 210, 230],
                "logo_url": "https://tessera.example/logo.png",
            },
            "apple": {
                "pass_type_id": PASS_TYPE_ID,
                "team_id": TEAM_ID,
                "web_service_url": web_service_url,
                "certificate": "pass.pem",
                "key": "pass.key",
                "wwdr": "wwdr.pem",
                "images": "images",
                "apns_url": stand_in,
            },
            "google": {
                "issuer_id": ISSUER_ID,
                "class_suffix": "tessera-club",
                "service_account": "sa.json",
                "api_url": stand_in,
                "origins": ["https://tessera.example"],
            },
        });
        let config = d.join("wallet.json");
        std::fs::write(&config, settings.to_string()).unwrap();
        WalletFixture {
            root: d.join("root.pem"),
            google_public: d.join("sa.pub"),
            config,
            dir,
        }
    }

    pub fn load(&self) -> tessera_server::wallet::WalletConfig {
        tessera_server::wallet::WalletConfig::from_file(&self.config).unwrap()
    }
}

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Debug, Default)]
struct Shared {
    seen: Mutex<Vec<Seen>>,
    tokens_issued: Mutex<u32>,
    /// Seconds each access token lasts.
    token_lifetime: Mutex<i64>,
}

/// The stand-in for Google (token endpoint, Wallet API) and APNs; stops when dropped.
#[derive(Debug)]
pub struct StandIn {
    pub url: String,
    shared: Arc<Shared>,
    _rt: tokio::runtime::Runtime,
}

impl StandIn {
    pub fn start() -> StandIn {
        let (rt, listener) = crate::stand_in_runtime("127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            token_lifetime: Mutex::new(3600),
            ..Shared::default()
        });
        let app = axum::Router::new()
            .fallback(
                |State(s): State<Arc<Shared>>,
                 method: Method,
                 uri: Uri,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let path = uri.path().to_owned();
                    s.seen.lock().unwrap().push(Seen {
                        method: method.clone(),
                        path: path.clone(),
                        headers,
                        body: body.to_vec(),
                    });
                    if path == "/token" {
                        let mut n = s.tokens_issued.lock().unwrap();
                        *n += 1;
                        let lifetime = *s.token_lifetime.lock().unwrap();
                        return (
                            StatusCode::OK,
                            serde_json::json!({"access_token": format!("ya29.test-{n}"),
                                "expires_in": lifetime, "token_type": "Bearer"})
                            .to_string(),
                        );
                    }
                    if path.starts_with("/3/device/gone") {
                        return (StatusCode::GONE, "{\"reason\":\"Unregistered\"}".into());
                    }
                    (StatusCode::OK, "{}".into())
                },
            )
            .with_state(shared.clone());
        rt.spawn(async move { axum::serve(listener, app).await });
        StandIn {
            url,
            shared,
            _rt: rt,
        }
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Wait up to 10 s for a request matching `f`.
    pub fn wait_for(&self, what: &str, f: impl Fn(&Seen) -> bool) -> Seen {
        let start = std::time::Instant::now();
        loop {
            if let Some(s) = self.seen().into_iter().find(|s| f(s)) {
                return s;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "no {what} in 10 s: {:?}",
                self.seen()
                    .iter()
                    .map(|s| format!("{} {}", s.method, s.path))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// How long the access tokens it issues last from now on.
    pub fn set_token_lifetime(&self, seconds: i64) {
        *self.shared.token_lifetime.lock().unwrap() = seconds;
    }
}
