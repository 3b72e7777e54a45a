"""Enrolment, offline actions and sync from Python, against a real `tessera serve` on loopback."""

import socket

import pytest

import tessera
from http_client import PyHttpClient, phone
from tessera import DeviceInfo, EventKind, Platform, SyncPhase, SyncSettings

DEVICE = DeviceInfo(platform=Platform.OTHER, app_version="1.0.0")
FAST = SyncSettings(connect_timeout_ms=500, request_timeout_ms=2000, max_attempts=2, base_delay_ms=1,
                    max_delay_ms=5, page_size=100)


def enrolled(tmp_path, server_url, name="Ada Lovelace"):
    t = phone(str(tmp_path / "member.db"))
    t.set_sync_settings(FAST)
    view = t.enrol(server_url, name, DEVICE)
    assert view.holder_name == name
    return t


def test_offline_actions_reach_the_server_once(tmp_path, server_url):
    t = enrolled(tmp_path, server_url)
    ids = [t.record_event(EventKind.STORE_VISIT, "st-paris-01", {"source": "test"}) for _ in range(5)]
    t.set_favourite_store("st-lyon-01", True)
    assert len(set(ids)) == 5
    assert t.sync_status().pending == 6
    assert all(e.synced_at is None for e in t.activity(10))

    report = t.sync()
    assert (report.pushed, report.replayed, report.rejected) == (6, 0, 0)
    assert report.catalog_changes > 300
    state = t.member_state().state
    assert state.events_recorded == 5
    assert state.favourite_store_ids == ["st-lyon-01"]
    assert t.sync_status().pending == 0
    assert all(e.synced_at is not None for e in t.activity(10))

    again = t.sync()
    assert (again.pushed, again.catalog_changes, again.requests) == (0, 0, 1)
    assert t.member_state().state.events_recorded == 5


def test_the_catalog_is_read_from_the_cache(tmp_path, server_url):
    t = enrolled(tmp_path, server_url)
    t.sync()
    summary = t.catalog_summary()
    assert summary.stores == 321 and summary.offers == 90 and summary.as_of is not None
    paris = t.stores("Paris", 500)
    assert paris and all(s.city == "Paris" for s in paris)
    assert len(t.stores(None, 7)) == 7


def test_the_listener_hears_every_phase(tmp_path, server_url):
    t = enrolled(tmp_path, server_url)
    t.record_event(EventKind.APP_OPENED, None, {})
    heard = []

    class Listener(tessera.SyncListener):
        def on_progress(self, progress):
            heard.append(progress.phase)

    t.set_sync_listener(Listener())
    t.sync()
    assert heard[0] == SyncPhase.STARTED and heard[-1] == SyncPhase.FINISHED
    assert {SyncPhase.PUSHING, SyncPhase.PULLING, SyncPhase.MEMBER} <= set(heard)
    t.set_sync_listener(None)
    heard.clear()
    t.sync()
    assert heard == []


def test_refused_actions_are_kept_with_the_reason(tmp_path, server_url):
    t = enrolled(tmp_path, server_url)
    t.record_event(EventKind.STORE_VISIT, "st-nowhere-99", {})
    t.record_event(EventKind.APP_OPENED, None, {})
    report = t.sync()
    assert (report.pushed, report.rejected) == (1, 1)
    [refused] = t.rejected_actions()
    assert (refused.status, refused.code) == (422, "unknown_store")
    assert t.sync_status().rejected == 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_server_is_offline_and_nothing_is_lost(tmp_path):
    t = phone(str(tmp_path / "member.db"))
    t.set_sync_settings(FAST)
    with pytest.raises(tessera.SyncError.Offline):
        t.enrol(f"http://127.0.0.1:{free_port()}", "Ada", DEVICE)
    with pytest.raises(tessera.SyncError.NotEnrolled):
        t.sync()


def test_bad_input_gets_typed_errors(tmp_path, server_url):
    t = phone(str(tmp_path / "member.db"))
    with pytest.raises(tessera.ActionError.NotEnrolled):
        t.record_event(EventKind.APP_OPENED, None, {})
    with pytest.raises(tessera.SyncError.InvalidInput) as bad:
        t.set_sync_settings(SyncSettings(max_attempts=0))
    assert bad.value.field == "max_attempts"
    with pytest.raises(tessera.SyncError.InvalidInput) as bad:
        t.enrol("ftp://example.com", "Ada", DEVICE)
    assert bad.value.field == "server_url"
    with pytest.raises(tessera.SyncError.InvalidInput) as bad:
        t.enrol(server_url, "   ", DEVICE)
    assert bad.value.field == "holder_name"
    with pytest.raises(tessera.SyncError.Server) as refused:
        t.enrol(server_url, "Ada", DeviceInfo(platform=Platform.OTHER, app_version=""))
    assert refused.value.status == 422

    t.set_sync_settings(FAST)
    t.enrol(server_url, "Ada", DEVICE)
    with pytest.raises(tessera.SyncError.AlreadyEnrolled):
        t.enrol(server_url, "Ada", DEVICE)
    with pytest.raises(tessera.ActionError.InvalidInput) as bad:
        t.record_event(EventKind.STORE_VISIT, "no spaces allowed", {})
    assert bad.value.field == "event.store_id"
    with pytest.raises(tessera.ActionError.InvalidInput):
        t.record_event(EventKind.APP_OPENED, None, {f"k{i}": "v" for i in range(33)})
    with pytest.raises(tessera.ActionError.InvalidInput):
        t.record_event(EventKind.APP_OPENED, None, {"note": "x" * 201})


def test_sign_out_keeps_pending_actions_unless_told(tmp_path, server_url):
    t = enrolled(tmp_path, server_url)
    t.record_event(EventKind.APP_OPENED, None, {})
    with pytest.raises(tessera.SyncError.PendingActions) as pending:
        t.sign_out(False)
    assert pending.value.count == 1
    t.sync()
    t.sign_out(False)
    status = t.sync_status()
    assert not status.enrolled and status.member_id is None
    with pytest.raises(tessera.SyncError.NotEnrolled):
        t.sync()


def test_network_calls_need_the_apps_http_client(tmp_path, server_url):
    t = tessera.Tessera.open(str(tmp_path / "member.db"))
    with pytest.raises(tessera.SyncError.NoHttpClient):
        t.enrol(server_url, "Ada", DEVICE)
    client = PyHttpClient()
    t.set_http_client(client)
    t.set_sync_settings(FAST)
    t.enrol(server_url, "Ada", DEVICE)
    report = t.sync()
    # Every request went through the app's client, gzip included (the catalog is compressed):
    # the enrolment, the device's certificate (the rotating member code), the sync's.
    assert client.requests == 2 + report.requests
    assert client.gzipped >= 1
    assert report.catalog_changes > 300


class Scripted(tessera.HttpClient):
    """Answers every request with the same failure or response."""

    def __init__(self, outcome):
        self.outcome = outcome
        self.seen = []

    def send(self, request):
        self.seen.append(request)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def test_what_the_apps_client_throws_becomes_a_typed_sync_error(tmp_path):
    cases = [
        (tessera.HttpError.Offline(reason="no route"), tessera.SyncError.Offline, 2),
        (tessera.HttpError.Timeout(), tessera.SyncError.Timeout, 2),
        (tessera.HttpError.Interrupted(reason="reset"), tessera.SyncError.Protocol, 2),
        (tessera.HttpError.TooLarge(), tessera.SyncError.Protocol, 1),
        # A client bug (any other exception) is an interrupted exchange, not a crash.
        (RuntimeError("bug in the app's client"), tessera.SyncError.Protocol, 2),
        # A client that ignores the cap is caught by the core.
        (tessera.HttpResponse(status=200, headers=[tessera.HttpHeader(name="Tessera-API-Version", value="1")],
                              body=b" " * (32 * 1024 * 1024 + 1)), tessera.SyncError.Protocol, 1),
    ]
    for i, (outcome, expected, attempts) in enumerate(cases):
        t = tessera.Tessera.open(str(tmp_path / f"m{i}.db"))
        client = Scripted(outcome)
        t.set_http_client(client)
        t.set_sync_settings(FAST)
        with pytest.raises(expected):
            t.enrol("https://loyalty.example.com", "Ada", DEVICE)
        assert len(client.seen) == attempts, outcome
        sent = client.seen[0]
        assert sent.method == tessera.HttpMethod.POST
        assert sent.url == "https://loyalty.example.com/v1/enrol"
        assert (sent.connect_timeout_ms, sent.timeout_ms) == (500, 2000)
        assert {h.name: h.value for h in sent.headers}["content-type"] == "application/json"
        assert t.sync_status().enrolled is False


class MemoryStore(tessera.SecretStore):
    """A SecretStore in memory, as an app's Keystore/Keychain one behaves."""

    def __init__(self):
        self.items = {}

    def get(self, key):
        return self.items.get(key)

    def set(self, key, value):
        self.items[key] = value

    def delete(self, key):
        self.items.pop(key, None)


def test_tokens_live_in_the_apps_secret_store(tmp_path, server_url):
    path = tmp_path / "member.db"
    t = phone(path)
    t.set_sync_settings(FAST)
    t.enrol(server_url, "Ada", DEVICE)
    raw = lambda: path.read_bytes() + (path.parent / "member.db-wal").read_bytes()
    import sqlite3
    with sqlite3.connect(path) as c:
        refresh = c.execute("SELECT refresh_token FROM session").fetchone()[0]
    assert refresh and refresh.encode() in raw()

    store = MemoryStore()
    t.set_secret_store(store)
    # The two tokens and the device's key for the rotating member code.
    assert refresh in store.items.values() and len(store.items) == 3
    assert any(k.endswith("/device_key") for k in store.items)
    assert refresh.encode() not in raw(), "no copy left in the file or its WAL"
    t.sync()

    again = phone(path)
    with pytest.raises(tessera.SyncError.NoSecretStore):
        again.sync()
    again.set_secret_store(store)
    again.sync()
    again.sign_out(False)
    assert store.items == {}


def test_sync_as_a_coroutine(tmp_path, server_url):
    import asyncio
    t = phone(tmp_path / "member.db")
    t.set_sync_settings(FAST)
    t.enrol(server_url, "Ada", DEVICE)
    t.record_event(EventKind.APP_OPENED, None, {})
    report = asyncio.run(t.sync_async())
    assert report.pushed == 1 and report.catalog_changes > 300
    assert t.sync_status().pending == 0
