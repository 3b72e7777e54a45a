"""The consent screen and the preference centre from Python, against a real `tessera serve`."""

import json

import pytest

import tessera
from http_client import phone
from tessera import (
    Channel,
    ConsentChoice,
    ConsentSource,
    ConsentText,
    Decision,
    DeviceInfo,
    Feature,
    FrequencyCap,
    NotificationRequest,
    NotificationVerdict,
    Platform,
    Purpose,
    QuietHours,
    SyncSettings,
)

TEXT = ConsentText(version="consent-2026-11", text="Offers by push and e-mail; change your mind at any time.")
FAST = SyncSettings(connect_timeout_ms=500, request_timeout_ms=2000, max_attempts=2, base_delay_ms=1, max_delay_ms=5)


@pytest.fixture
def member(tmp_path, server_url):
    t = phone(str(tmp_path / "member.db"))
    t.set_sync_settings(FAST)
    t.enrol(server_url, "Chloé Martin", DeviceInfo(platform=Platform.ANDROID, app_version="3.2.0"))
    return t


def test_the_consent_grid_starts_closed_and_follows_the_member(member):
    grid = member.consent_state()
    assert len(grid) == 20
    assert not any(cell.allowed for cell in grid)
    assert not member.permits(Feature.PUSH_OFFERS)

    records = member.record_consent(
        [
            ConsentChoice(purpose=Purpose.MARKETING_OFFERS, channel=Channel.PUSH, decision=Decision.GRANTED),
            ConsentChoice(purpose=Purpose.MARKETING_OFFERS, channel=Channel.SMS, decision=Decision.DENIED),
        ],
        TEXT,
    )
    assert [r.source for r in records] == [ConsentSource.APP_SCREEN] * 2
    assert records[0].text_sha256 == tessera.consent_text_sha256(TEXT)
    assert records[0].app_version == "3.2.0"
    assert member.permits(Feature.PUSH_OFFERS) and not member.permits(Feature.SMS_OFFERS)
    cell = next(c for c in member.consent_state() if c.purpose == Purpose.MARKETING_OFFERS and c.channel == Channel.SMS)
    assert cell.decision == Decision.DENIED and not cell.allowed

    member.withdraw_all_consents(TEXT)
    assert not member.permits(Feature.PUSH_OFFERS)
    member.sync()
    history = member.consent_history()
    assert len(history) == 3 and all(r.recorded_at for r in history)


def test_the_preference_centre_round_trips_and_drives_notifications(member):
    prefs = member.preferences()
    assert prefs.quiet_hours == QuietHours(start="21:00", end="09:00")
    prefs.interests = ["tea"]
    prefs.channels = [Channel.PUSH]
    prefs.caps = [FrequencyCap(channel=Channel.PUSH, per_day=1, per_week=None)]
    prefs.quiet_hours = None
    prefs.timezone = "Europe/Paris"
    prefs.language = "fr-FR"
    assert member.set_preferences(prefs) == prefs
    member.sync()
    assert member.preferences() == prefs
    assert member.member_state().state.preferences == prefs

    member.record_consent(
        [ConsentChoice(purpose=Purpose.MARKETING_OFFERS, channel=Channel.PUSH, decision=Decision.GRANTED)], TEXT
    )
    coffee = NotificationRequest(purpose=Purpose.MARKETING_OFFERS, channel=Channel.PUSH, categories=["coffee"])
    tea = NotificationRequest(purpose=Purpose.MARKETING_OFFERS, channel=Channel.PUSH, categories=["tea"])
    email = NotificationRequest(purpose=Purpose.MARKETING_OFFERS, channel=Channel.EMAIL, categories=[])
    assert isinstance(member.claim_notification(coffee), NotificationVerdict.NOT_OF_INTEREST)
    assert isinstance(member.claim_notification(email), NotificationVerdict.NO_CONSENT)
    assert isinstance(member.claim_notification(tea), NotificationVerdict.SEND)
    capped = member.claim_notification(tea)
    assert isinstance(capped, NotificationVerdict.CAP_REACHED) and capped.per_day

    offers = member.offers(500)
    assert offers.offers and not offers.personalised
    assert all(not o.categories or "tea" in o.categories for o in offers.offers)


def test_bad_preferences_and_choices_are_typed(member):
    prefs = member.preferences()
    prefs.timezone = "Mars/Olympus"
    with pytest.raises(tessera.ActionError.InvalidInput) as bad:
        member.set_preferences(prefs)
    assert bad.value.field == "preferences.timezone"
    with pytest.raises(tessera.ActionError.InvalidInput) as bad:
        member.record_consent([], TEXT)
    assert bad.value.field == "choices"
    assert member.consent_history() == []


def test_analytics_are_dropped_without_consent(member):
    assert member.track("screen_viewed", {"screen": "offers"}) is False
    member.record_consent(
        [ConsentChoice(purpose=Purpose.ANALYTICS, channel=Channel.IN_APP, decision=Decision.GRANTED)], TEXT
    )
    assert member.track("screen_viewed", {"screen": "offers"}) is True
    assert member.sync().rejected == 0


def test_export_and_erasure(member):
    member.record_consent(
        [ConsentChoice(purpose=Purpose.MARKETING_OFFERS, channel=Channel.EMAIL, decision=Decision.GRANTED)], TEXT
    )
    member.sync()
    export = json.loads(member.export_my_data())
    assert export["server"]["member"]["holder_name"] == "Chloé Martin"
    assert len(export["device"]["consent_records"]) == 1
    offline = json.loads(member.export_device_data())
    assert offline["session"][0]["member_id"] == export["server"]["member"]["member_id"]

    receipt = member.erase_member()
    assert receipt.consent_records_anonymised == 1
    assert not member.sync_status().enrolled
    with pytest.raises(tessera.SyncError.NotEnrolled):
        member.erase_member()
