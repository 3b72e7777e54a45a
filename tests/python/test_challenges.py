"""Challenges and badges from Python, against a real `tessera serve`: the rule set arrives with the
catalog feed, events recorded offline count at once (an estimate), the server's evaluation
replaces it after sync and pays each reward once."""

import json
import urllib.request

import pytest

import tessera
from http_client import phone
from tessera import DeviceInfo, EventKind, Platform, PointsKind, RuleReward, SyncSettings

FAST = SyncSettings(connect_timeout_ms=500, request_timeout_ms=2000, max_attempts=2, base_delay_ms=1, max_delay_ms=5)

# Kinds no other Python test records, so that the shared server's other members are unaffected.
CHALLENGES = {"version": 1, "challenges": [
    {"id": "py-profile", "title": "Complete your profile", "badge": "id-card",
     "window": {"type": "fixed", "from": "2026-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"},
     "goal": {"type": "count", "target": 1, "filter": {"kinds": ["profile_completed"]}},
     "reward": {"type": "points", "points": 40}},
    {"id": "py-referrals", "title": "Bring two friends", "opt_in": True,
     "window": {"type": "calendar_month"},
     "goal": {"type": "count", "target": 2, "filter": {"kinds": ["referral_converted"]}},
     "reward": {"type": "tier_bonus", "points": 10}},
]}


def put_challenges(server_url, body):
    req = urllib.request.Request(
        f"{server_url}/admin/v1/challenges",
        data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer tessera-admin", "Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(req) as resp:
        return resp.status


@pytest.fixture
def member(tmp_path, server_url):
    assert put_challenges(server_url, CHALLENGES) == 204
    t = phone(str(tmp_path / "member.db"))
    t.set_sync_settings(FAST)
    t.enrol(server_url, "Chloé Martin", DeviceInfo(platform=Platform.ANDROID, app_version="3.2.0"))
    t.sync()
    return t


def by_id(view, challenge_id):
    return next(c for c in view.challenges if c.challenge_id == challenge_id)


def test_progress_moves_offline_and_the_server_pays_once(member):
    profile = by_id(member.challenges(), "py-profile")
    assert (profile.done, profile.target, profile.left) == (0, 1, 1)
    assert profile.deadline == "2030-01-01T00:00:00.000Z"
    assert profile.reward == RuleReward.POINTS(points=40)
    member.record_event(EventKind.PROFILE_COMPLETED, None, {})
    offline = member.challenges()
    assert offline.estimated and by_id(offline, "py-profile").completed
    assert [b.badge for b in offline.badges] == ["id-card"]
    member.sync()
    synced = member.challenges()
    assert not synced.estimated
    assert [(b.challenge_id, b.badge) for b in synced.badges] == [("py-profile", "id-card")]
    member.record_event(EventKind.PROFILE_COMPLETED, None, {})
    member.sync()
    bonuses = [e.points for e in member.points().ledger if e.kind == PointsKind.BONUS]
    assert bonuses == [40], "once, however often the profile is completed"


def test_opt_in_counts_after_joining(member):
    member.record_event(EventKind.REFERRAL_CONVERTED, None, {})
    view = member.challenges()
    assert not by_id(view, "py-referrals").joined
    assert by_id(view, "py-referrals").done == 0
    member.join_challenge("py-referrals")
    for _ in range(2):
        member.record_event(EventKind.REFERRAL_CONVERTED, None, {})
    assert by_id(member.challenges(), "py-referrals").completed
    member.sync()
    state = by_id(member.challenges(), "py-referrals")
    assert state.joined and state.completed and state.completions == 1
    with pytest.raises(tessera.ActionError.InvalidInput):
        member.join_challenge("nope")
