"""The wallet and the till from Python, against a real `tessera serve`: redeem once, typed
refusals, ten offline tills reporting one coupon (one accepted, nine conflicts), points and a
reward bought with them."""

import json
import urllib.request

import pytest

import tessera
from http_client import PyHttpClient, phone
from tessera import DeviceInfo, Platform, PurchaseLine, PurchaseRequest, ReturnRequest, SyncSettings

FAST = SyncSettings(connect_timeout_ms=500, request_timeout_ms=2000, max_attempts=2, base_delay_ms=1, max_delay_ms=5)
OFFLINE = "http://127.0.0.1:9"


def register_till(server_url, store):
    req = urllib.request.Request(
        f"{server_url}/admin/v1/tills",
        data=json.dumps({"store_id": store}).encode(),
        headers={"Authorization": "Bearer tessera-admin", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 201
        return json.load(resp)["token"]


@pytest.fixture
def member(tmp_path, server_url):
    t = phone(str(tmp_path / "member.db"))
    t.set_sync_settings(FAST)
    t.enrol(server_url, "Chloé Martin", DeviceInfo(platform=Platform.IOS, app_version="3.2.0"))
    t.sync()
    return t


def coupon(member, offer="of-009"):
    member.clip_offer(offer)
    member.sync()
    return next(c for c in member.wallet() if c.offer_id == offer and isinstance(c.state, tessera.CouponState.AVAILABLE))


def test_a_till_redeems_once_and_refuses_with_types(tmp_path, server_url, member):
    code = coupon(member).code
    till = tessera.Till.open(str(tmp_path / "t.journal"), server_url, register_till(server_url, "st-paris-01"), "st-paris-01", PyHttpClient())
    assert till.verify(code, None, 2500).offer_id == "of-009"
    with pytest.raises(tessera.TillError.Coupon) as wrong:
        till.verify(code, "m_other", 2500)
    assert isinstance(wrong.value.problem, tessera.CouponError.WrongMember)
    with pytest.raises(tessera.TillError.Coupon) as forged:
        till.verify(code[:-12] + ("A" if code[-12] != "A" else "B") + code[-11:], None, 2500)
    assert isinstance(forged.value.problem, (tessera.CouponError.BadSignature, tessera.CouponError.Malformed))
    lyon = tessera.Till.open(str(tmp_path / "l.journal"), server_url, register_till(server_url, "st-lyon-01"), "st-lyon-01", PyHttpClient())
    assert till.redeem(code, 2500, "PY-1").store_id == "st-paris-01"
    with pytest.raises(tessera.TillError.Coupon) as twice:
        lyon.redeem(code, 2500, "PY-2")
    assert isinstance(twice.value.problem, tessera.CouponError.AlreadyRedeemed)
    assert twice.value.problem.store_id == "st-paris-01"
    with pytest.raises(tessera.TillError.InvalidInput):
        till.redeem(code, 2500, "")
    with pytest.raises(tessera.TillError.Network):
        tessera.Till.open(str(tmp_path / "never.journal"), OFFLINE, "token", "st-paris-01", PyHttpClient())


def test_ten_offline_tills_report_one_coupon_one_accepted_nine_conflicts(tmp_path, server_url, member):
    code = coupon(member).code
    tokens = [register_till(server_url, "st-paris-01") for _ in range(10)]
    journals = [str(tmp_path / f"till-{i}.journal") for i in range(10)]
    for journal, token in zip(journals, tokens):
        tessera.Till.open(journal, server_url, token, "st-paris-01", PyHttpClient())  # keys, while online
    for i, (journal, token) in enumerate(zip(journals, tokens)):
        assert tessera.Till.open(journal, OFFLINE, token, "st-paris-01", PyHttpClient()).redeem(code, 2500, f"PY-{i}") is None
    reports = [tessera.Till.open(j, server_url, t, "st-paris-01", PyHttpClient()).sync() for j, t in zip(journals, tokens)]
    assert sum(r.accepted for r in reports) == 1
    assert sum(len(r.conflicts) for r in reports) == 9
    assert all(c.code == "redemption_conflict" for r in reports for c in r.conflicts)
    member.sync()
    state = next(c for c in member.wallet() if c.code == code).state
    assert isinstance(state, tessera.CouponState.REDEEMED) and state.store_id == "st-paris-01"


def test_points_from_a_purchase_and_a_return(tmp_path, server_url, member):
    till = tessera.Till.open(str(tmp_path / "t.journal"), server_url, register_till(server_url, "st-paris-01"), "st-paris-01", PyHttpClient())
    card = member.card().card_number
    # The member shows the rotating code; the till checks it offline and the server again.
    scanned = till.scan_member(member.member_code().code)
    assert scanned.card_number == card and not scanned.seen_before
    receipt = till.record_purchase(PurchaseRequest(
        receipt="PY-100", card_number=card, member_code=scanned.code, total_cents=12_000,
        occurred_offline_at=None,
        lines=[PurchaseLine(sku="sku-teapot", category="tea", collection=None, quantity=1, amount_cents=12_000)]))
    assert (receipt.points_earned, receipt.points_balance) == (120, 120)
    back = till.return_goods(ReturnRequest(receipt="PY-100", store_id=None, refunded_cents=6_000))
    assert (back.points_reversed, back.points_balance) == (60, 60)
    with pytest.raises(tessera.TillError.Refused) as again:
        till.record_purchase(PurchaseRequest(
            receipt="PY-100", card_number=None, member_code=None, total_cents=100, occurred_offline_at=None,
            lines=[PurchaseLine(sku="sku-1", category=None, collection=None, quantity=1, amount_cents=100)]))
    assert again.value.code == "receipt_reused"
    member.sync()
    points = member.points()
    assert points.balance == 60
    assert [e.kind for e in points.ledger] == [tessera.PointsKind.REVERSE, tessera.PointsKind.EARN]
    progress = member.tier_progress()
    assert progress.tier == "Member" and progress.points_to_next == 500 - 60


def test_the_phone_names_the_rule_the_server_enforces(member):
    # of-008 is for Gold members; a new member is at the base tier.
    refusal = member.offer_refusal("of-008")
    assert isinstance(refusal, tessera.Refusal.TIER)
    assert member.offer_refusal("of-009") is None
    # An offer the cache does not hold is a typed error.
    with pytest.raises(tessera.ActionError.InvalidInput):
        member.offer_refusal("not-in-the-catalog")
    # The server refuses the clip by the same rule: a rejected action with its code.
    member.clip_offer("of-008")
    member.sync()
    assert [r.code for r in member.rejected_actions()] == ["offer_refused"]
