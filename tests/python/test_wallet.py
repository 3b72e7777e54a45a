"""Credentials the server mints and the wallet links it signs, checked by an independent JWT
library (PyJWT with `cryptography`): `tessera serve` started with an operator's files made by
`openssl` (a service account key, an APNs `.p8` key, a pass type certificate), talking to a
stand-in on loopback for Google's token endpoint and APIs and for APNs.

- the "Save to Google Wallet" link: RS256 with the service account key, `aud` google;
- the OAuth assertion exchanged at the token endpoint (FCM's scope, then the Wallet API's);
- the APNs provider token on campaign pushes: ES256 with the `.p8` key, `kid` and team.
"""

import json
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from PIL import Image

import tessera
from conftest import serve
from http_client import phone
from tessera import Channel, ConsentChoice, ConsentText, Decision, DeviceInfo, Platform, Purpose

KEY_ID = "ABC123DEFG"
TEAM_ID = "TESSERA123"
PASS_TYPE = "pass.app.tessera.python"
ISSUER = "3388000000022000001"
EMAIL = "wallet@tessera-python.iam.gserviceaccount.com"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
WALLET_SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"


def openssl(cwd, *args):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def operator_files(d: Path, stand_in: str) -> Path:
    """What an operator supplies, made the way an operator would (openssl), and the settings."""
    openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "root.key", "-out", "root.pem",
            "-days", "2", "-subj", "/CN=Python Test Root", "-addext", "basicConstraints=critical,CA:TRUE")
    openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "wwdr.key", "-out", "wwdr.csr",
            "-subj", "/CN=Python Test WWDR")
    (d / "ca.ext").write_text("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n")
    openssl(d, "x509", "-req", "-in", "wwdr.csr", "-CA", "root.pem", "-CAkey", "root.key", "-set_serial", "2",
            "-out", "wwdr.pem", "-days", "2", "-extfile", "ca.ext")
    openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "pass.key", "-out", "pass.csr",
            "-subj", f"/UID={PASS_TYPE}/CN=Pass Type ID: {PASS_TYPE}/OU={TEAM_ID}")
    (d / "leaf.ext").write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n")
    openssl(d, "x509", "-req", "-in", "pass.csr", "-CA", "wwdr.pem", "-CAkey", "wwdr.key", "-set_serial", "3",
            "-out", "pass.pem", "-days", "2", "-extfile", "leaf.ext")
    openssl(d, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key")
    openssl(d, "pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub")
    openssl(d, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "apns.p8")
    openssl(d, "pkey", "-in", "apns.p8", "-pubout", "-out", "apns.pub")
    (d / "sa.json").write_text(json.dumps({
        "type": "service_account", "project_id": "tessera-python", "private_key_id": "kid-py",
        "private_key": (d / "sa.key").read_text(), "client_email": EMAIL, "token_uri": f"{stand_in}/token",
    }))
    (d / "images").mkdir()
    Image.new("RGB", (29, 29), (20, 40, 80)).save(d / "images" / "icon.png")
    Image.new("RGB", (58, 58), (20, 40, 80)).save(d / "images" / "icon@2x.png")
    settings = d / "wallet.json"
    settings.write_text(json.dumps({
        "branding": {"programme_name": "Tessera Club", "organization_name": "Maison Tessera",
                     "foreground": [255, 255, 255], "background": [20, 40, 80], "label": [200, 210, 230],
                     "logo_url": "https://tessera.example/logo.png"},
        "apple": {"pass_type_id": PASS_TYPE, "team_id": TEAM_ID, "web_service_url": "http://127.0.0.1/passkit",
                  "certificate": "pass.pem", "key": "pass.key", "wwdr": "wwdr.pem", "images": "images",
                  "apns_url": stand_in},
        "google": {"issuer_id": ISSUER, "class_suffix": "club", "service_account": "sa.json",
                   "api_url": stand_in, "origins": ["https://tessera.example"]},
    }))
    return settings


class StandIn:
    """Google's token endpoint (checking each assertion with PyJWT), Google's APIs, FCM and APNs."""

    def __init__(self, sa_public: bytes):
        self.sa_public = sa_public
        self.requests = []
        self.assertions = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with outer.lock:
                    outer.requests.append((self.command, self.path, dict(self.headers), body))
                if self.path == "/token":
                    form = urllib.parse.parse_qs(body.decode())
                    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
                    claims = jwt.decode(form["assertion"][0], outer.sa_public, algorithms=["RS256"],
                                        audience=f"{outer.url}/token")
                    header = jwt.get_unverified_header(form["assertion"][0])
                    with outer.lock:
                        outer.assertions.append((header, claims))
                        n = len(outer.assertions)
                    return self._answer(200, {"access_token": f"ya29.python-{n}", "expires_in": 3600})
                self._answer(200, {})

            do_POST = _handle
            do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, what, match, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [r for r in self.requests if match(r)]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no {what}: {[(r[0], r[1]) for r in self.requests]}")


@pytest.fixture(scope="module")
def wallet_server():
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        # The stand-in's address goes into the operator's files: start it on its key first.
        openssl(d, "version")
        stand_in = StandIn(b"")
        settings = operator_files(d, stand_in.url)
        stand_in.sa_public = (d / "sa.pub").read_bytes()
        args = ["--wallet-config", str(settings),
                "--fcm-service-account", str(d / "sa.json"), "--fcm-url", stand_in.url,
                "--apns-topic", "app.tessera.python", "--apns-key", str(d / "apns.p8"),
                "--apns-key-id", KEY_ID, "--apns-team-id", TEAM_ID, "--apns-url", stand_in.url]
        try:
            with serve(*args) as url:
                yield url, stand_in, d
        finally:
            stand_in.server.shutdown()


def http(method, url, token=None, body=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def test_the_save_link_is_an_rs256_jwt_google_can_check(wallet_server):
    url, stand_in, d = wallet_server
    enrolled = http("POST", f"{url}/v1/enrol", body={
        "holder_name": "Chloé Martin", "device": {"platform": "android", "app_version": "1"}})
    token = enrolled["tokens"]["access_token"]
    link = http("GET", f"{url}/v1/wallet/google/card", token)
    save = link["save_url"]
    assert save.startswith("https://pay.google.com/gp/v/save/")
    signed = save.removeprefix("https://pay.google.com/gp/v/save/")
    claims = jwt.decode(signed, (d / "sa.pub").read_bytes(), algorithms=["RS256"], audience="google")
    assert jwt.get_unverified_header(signed)["kid"] == "kid-py"
    assert claims["iss"] == EMAIL and claims["typ"] == "savetowallet"
    assert claims["origins"] == ["https://tessera.example"]
    [obj] = claims["payload"]["loyaltyObjects"]
    assert obj["id"] == f"{ISSUER}.card-{enrolled['member_id']}" == link["object_id"]
    assert obj["accountId"] == enrolled["card"]["card_number"]
    assert obj["loyaltyPoints"] == {"label": "Points", "balance": {"int": 0}}
    [cls] = claims["payload"]["loyaltyClasses"]
    assert cls["id"] == f"{ISSUER}.club" and cls["issuerName"] == "Maison Tessera"
    # Altered by one character, it no longer verifies.
    head, body, sig = signed.split(".")
    forged = ".".join([head, body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1], sig])
    with pytest.raises(jwt.InvalidTokenError):
        jwt.decode(forged, (d / "sa.pub").read_bytes(), algorithms=["RS256"], audience="google")


def test_campaign_pushes_carry_credentials_the_server_minted(wallet_server, tmp_path):
    url, stand_in, d = wallet_server
    text = ConsentText(version="mk-1", text="Offers by push.")
    members = []
    for provider, push_token, platform in [(tessera.PushProvider.FCM, "fcm-python-1", Platform.ANDROID),
                                           (tessera.PushProvider.APNS, "a1b2c3d4e5", Platform.IOS)]:
        member = phone(tmp_path / f"{push_token}.db")
        member.enrol(url, "Python Member", DeviceInfo(platform=platform, app_version="1"))
        member.record_consent([ConsentChoice(purpose=Purpose.MARKETING_OFFERS, channel=Channel.PUSH,
                                             decision=Decision.GRANTED)], text)
        member.set_push_token(provider, push_token)
        member.sync()
        members.append(member)
    catalog = http("GET", f"{url}/v1/catalog", http("POST", f"{url}/v1/enrol", body={
        "holder_name": "Reader", "device": {"platform": "ios", "app_version": "1"}})["tokens"]["access_token"])
    offer = next(c["offer"] for c in catalog["changes"] if "offer" in c)
    offer["id"] = "of-python-push"
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))
    req = urllib.request.Request(f"{url}/admin/v1/campaigns", method="POST", data=json.dumps({
        "id": "cmp-python-1", "offer": offer, "title": "Tea time", "body": "-20 %",
        "expires_at": expires}).encode())
    req.add_header("Authorization", "Bearer tessera-admin")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 202

    apns = stand_in.wait_for("the APNs push", lambda r: r[1] == "/3/device/a1b2c3d4e5")
    bearer = apns[2]["authorization"].removeprefix("bearer ")
    claims = jwt.decode(bearer, (d / "apns.pub").read_bytes(), algorithms=["ES256"],
                        options={"require": ["iat"], "verify_aud": False})
    assert claims["iss"] == TEAM_ID
    assert abs(claims["iat"] - time.time()) < 120
    assert jwt.get_unverified_header(bearer) == {"alg": "ES256", "kid": KEY_ID, "typ": "JWT"}

    fcm = stand_in.wait_for("the FCM message", lambda r: r[1] == "/v1/projects/tessera-python/messages:send")
    assert fcm[2]["authorization"].startswith("Bearer ya29.python-")
    scopes = [claims["scope"] for _, claims in stand_in.assertions]
    assert FCM_SCOPE in scopes, scopes
    for header, claims in stand_in.assertions:
        assert header["alg"] == "RS256" and header["kid"] == "kid-py"
        assert claims["iss"] == EMAIL and claims["exp"] - claims["iat"] == 3600
