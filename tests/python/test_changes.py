"""The change announcements from Python: one listener told, after each commit, which kinds of
data changed; a sync tells once; a Python listener that raises does not break the write."""

import threading

from http_client import phone
from tessera import (
    Change,
    ChangeListener,
    Channel,
    ConsentChoice,
    ConsentText,
    Decision,
    DeviceInfo,
    EventKind,
    Platform,
    Purpose,
    SyncListener,
    SyncSettings,
)

FAST = SyncSettings(connect_timeout_ms=500, request_timeout_ms=2000, max_attempts=2, base_delay_ms=1, max_delay_ms=5)


class Recorder(ChangeListener):
    def __init__(self):
        self.seen = []
        self.lock = threading.Lock()

    def on_change(self, changes):
        with self.lock:
            self.seen.append(set(changes))

    def take(self):
        with self.lock:
            seen, self.seen = self.seen, []
        return seen


class Raising(ChangeListener):
    def on_change(self, changes):
        raise RuntimeError("a listener bug")


class RaisingProgress(SyncListener):
    def on_progress(self, progress):
        raise RuntimeError("a listener bug")


def test_each_commit_and_each_sync_announce_what_changed(server_url, tmp_path):
    member = phone(str(tmp_path / "changes.db"))
    member.set_sync_settings(FAST)
    rec = Recorder()
    member.set_change_listener(rec)
    member.enrol(server_url, "Chloé Martin", DeviceInfo(platform=Platform.IOS, app_version="3.2.0"))
    assert Change.CARD in set().union(*rec.take())

    member.sync()
    told = rec.take()
    assert len(told) == 1 and {Change.OFFERS, Change.POINTS, Change.WALLET} <= told[0]

    member.record_consent(
        [ConsentChoice(purpose=Purpose.MARKETING_OFFERS, channel=Channel.PUSH, decision=Decision.GRANTED)],
        ConsentText(version="py-1", text="Offers by push."),
    )
    told = rec.take()
    assert len(told) == 1 and {Change.CONSENT, Change.OFFERS} <= told[0] and Change.WALLET not in told[0]

    member.set_change_listener(Raising())
    member.record_event(EventKind.APP_OPENED, None, {})  # the write stands despite the listener
    member.set_change_listener(None)
    assert member.sync_status().pending == 2  # the consent and the event
    member.set_sync_listener(RaisingProgress())
    assert member.sync().pushed == 2  # nor does a failing progress listener stop a sync
    member.set_sync_listener(None)
    member.record_event(EventKind.APP_OPENED, None, {})
    assert rec.take() == []
