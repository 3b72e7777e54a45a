"""Webhook deliveries checked by an independent implementation of the Standard Webhooks
specification (the `standardwebhooks` package from PyPI): `tessera serve` delivers a member's
events to a receiver in this process, which verifies every signature with the package, answers
503 to every other first attempt, and keeps what it accepted. The server's retries bring each
event once, in order for the member; a body altered by one byte is refused by the verifier.
"""

import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from conftest import call, serve




class Receiver:
    def __init__(self):
        self.secret = None
        self.attempts = {}
        self.accepted = []
        self.raw = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                event = Webhook(receiver.secret).verify(body, headers)
                n = receiver.attempts[event["id"]] = receiver.attempts.get(event["id"], 0) + 1
                # Every other event fails its first attempt.
                if n == 1 and len(receiver.attempts) % 2 == 0:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.accepted.append(event)
                receiver.raw.append((body, headers))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}/hook"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


def test_deliveries_verify_with_an_independent_implementation():
    receiver = Receiver()
    with serve("--webhook-first-retry-ms", "50") as url:
        status, endpoint = call(url, "PUT", "/admin/v1/webhooks/crm",
                                {"url": receiver.url, "events": ["member.enrolled", "points.changed"]})
        assert status == 201 and endpoint["secret"].startswith("whsec_")
        receiver.secret = endpoint["secret"]
        req = urllib.request.Request(url + "/v1/enrol", method="POST", data=json.dumps(
            {"holder_name": "Ada", "device": {"platform": "cli", "app_version": "py"}}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as resp:
            member = json.loads(resp.read())["member_id"]
        for step in range(1, 6):
            call(url, "POST", f"/admin/v1/members/{member}/points",
                 {"points": step * 10, "reason": f"step {step}"})
        deadline = time.monotonic() + 30
        while len(receiver.accepted) < 6:
            assert time.monotonic() < deadline, receiver.accepted
            time.sleep(0.05)
        time.sleep(0.3)
        _, shown = call(url, "GET", "/admin/v1/webhooks/crm")
        assert shown["pending"] == 0 and "secret" not in shown

    events = receiver.accepted
    assert len(events) == 6, "each event accepted once"
    assert [e["type"] for e in events] == ["member.enrolled"] + ["points.changed"] * 5
    assert [e["data"]["points"] for e in events[1:]] == [10, 20, 30, 40, 50]
    assert all(e["member_id"] == member for e in events)
    sequences = [e["sequence"] for e in events]
    assert sequences == sorted(sequences), "in order for the member"
    assert max(receiver.attempts.values()) == 2, "failed first attempts were tried again"

    body, headers = receiver.raw[0]
    altered = body.replace(b'"member.enrolled"', b'"member.erased"')
    try:
        Webhook(receiver.secret).verify(altered, headers)
        raise AssertionError("an altered body verified")
    except WebhookVerificationError:
        pass
