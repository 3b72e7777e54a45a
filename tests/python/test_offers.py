"""Offers near the member, the geofence plan, region events and push messages from Python,
against a real `tessera serve` with the seed catalog; distances checked against GeographicLib."""

import json
import random
import time

import pytest
from geographiclib.geodesic import Geodesic

import tessera
from http_client import phone
from tessera import (
    Channel,
    ConsentChoice,
    ConsentText,
    Decision,
    DeviceInfo,
    Platform,
    Position,
    Purpose,
    RegionAction,
    RegionEventKind,
    SyncSettings,
)

FAST = SyncSettings(connect_timeout_ms=500, request_timeout_ms=2000, max_attempts=2, base_delay_ms=1, max_delay_ms=5)
PARIS = Position(latitude=48.8566, longitude=2.3522)
TEXT = ConsentText(version="geo-2026-11", text="Offers near you, using your location.")


def test_geodesic_distances_match_geographiclib_on_random_points():
    rng = random.Random(7)
    worst = 0.0
    for _ in range(2000):
        a = Position(latitude=rng.uniform(-90, 90), longitude=rng.uniform(-180, 180))
        if rng.random() < 0.5:  # nearby pairs, the common case, including across the antimeridian
            b = Position(latitude=max(-90, min(90, a.latitude + rng.uniform(-0.1, 0.1))),
                         longitude=((a.longitude + rng.uniform(-0.1, 0.1) + 540) % 360) - 180)
        else:
            b = Position(latitude=rng.uniform(-90, 90), longitude=rng.uniform(-180, 180))
        ours = tessera.geodesic_distance_m(a, b)
        theirs = Geodesic.WGS84.Inverse(a.latitude, a.longitude, b.latitude, b.longitude)["s12"]
        worst = max(worst, abs(ours - theirs))
    assert worst < 1e-6, f"largest difference {worst} m"


def test_geofence_budgets_follow_the_platforms():
    assert tessera.geofence_budget(Platform.IOS) == 20
    assert tessera.geofence_budget(Platform.ANDROID) == 100


@pytest.fixture
def member(tmp_path, server_url):
    t = phone(str(tmp_path / "member.db"))
    t.set_sync_settings(FAST)
    t.enrol(server_url, "Chloé Martin", DeviceInfo(platform=Platform.IOS, app_version="3.2.0"))
    t.sync()
    return t


def test_offers_near_are_nearest_first_and_within_the_radius(member):
    near = member.offers_near(PARIS, 3000.0, 20)
    assert near
    distances = [n.distance_m for n in near]
    assert distances == sorted(distances) and distances[-1] <= 3000.0
    for n in near:
        assert n.offer.channel != tessera.OfferChannel.ONLINE
    with pytest.raises(tessera.ActionError.InvalidInput) as bad:
        member.offers_near(Position(latitude=123.0, longitude=0.0), 1000.0, 10)
    assert bad.value.field == "position.latitude"


def test_the_plan_needs_location_consent_and_fits_the_ios_budget(member):
    assert member.plan_geofences(PARIS, 20, []).regions == []
    member.record_consent(
        [ConsentChoice(purpose=Purpose.GEOLOCATED_OFFERS, channel=c, decision=Decision.GRANTED)
         for c in (Channel.LOCATION, Channel.PUSH)],
        TEXT,
    )
    plan = member.plan_geofences(PARIS, tessera.geofence_budget(Platform.IOS), [])
    assert len(plan.regions) == 20 and len(plan.add) == 20 and plan.remove == []
    assert plan.regions[-1].id.startswith("replan:") and plan.regions[-1].store_id is None
    stores = [r for r in plan.regions if r.store_id]
    d = [Geodesic.WGS84.Inverse(PARIS.latitude, PARIS.longitude, r.latitude, r.longitude)["s12"] for r in stores]
    assert d == sorted(d)
    assert all(r.radius_m >= 100 for r in plan.regions)

    outcome = member.on_region_event(plan.regions[-1].id, RegionEventKind.EXIT, int(time.time() * 1000))
    assert isinstance(outcome.action, RegionAction.REPLAN)
    outcome = member.on_region_event(stores[0].id, RegionEventKind.DWELL, int(time.time() * 1000))
    assert outcome.visit_recorded
    assert member.sync().pushed >= 1


def test_push_messages_are_parsed_and_typed(member):
    now = int(time.time() * 1000)
    sync = json.dumps({"tessera": {"v": 1, "id": "sync-py-1", "kind": "sync"}})
    assert isinstance(member.handle_push(sync, now), tessera.PushDecision.SYNC_NOW)
    assert isinstance(member.handle_push(sync, now), tessera.PushDecision.SUPPRESS)
    with pytest.raises(tessera.PushError.NotTessera):
        member.handle_push(json.dumps({"aps": {"alert": "hi"}}), now)
    with pytest.raises(tessera.PushError.UnsupportedVersion) as newer:
        member.handle_push(json.dumps({"tessera": {"v": 7, "id": "x"}}), now)
    assert newer.value.version == 7
    with pytest.raises(tessera.PushError.NotJson):
        member.handle_push("{", now)
    assert member.set_push_token(tessera.PushProvider.APNS, "a1b2c3") is True
    assert member.set_push_token(tessera.PushProvider.APNS, "a1b2c3") is False
