"""The merchant console in a real browser: Debian's Chromium, headless, driven by Playwright,
against `tessera serve`. A support agent signs in, finds a member by card number, corrects
their points and sees the new balance; a store staff member finds the member but has no
correction form (a forged correction is refused) and records the consent the member gives at
the counter; an admin sees the dead-letter list of a webhook endpoint and replays it, then reads
the audit log; support erase the member (after typing the card number again). The pages are
used as a person with a keyboard would: fields found by their labels, forms sent with Enter.
A marketer runs the analysis, builds an audience from a segment and sends a campaign to it,
and tries a rule on a member before publishing it, then rolls it back. Store staff find a member
by scanning the rotating code the member's app draws.
Support decide a coupon redeemed at two offline tills. Each step leaves a screenshot in
target/console-screenshots/.
"""

import json
import os
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from conftest import ROOT, call, serve

PASSWORD = "correct horse battery staple"
SHOTS = ROOT / "target" / "console-screenshots"
CHROMIUM = os.environ.get("TESSERA_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]



@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield context
        context.close()


def sign_in(page, url, email):
    page.goto(url + "/console")
    assert page.url.endswith("/console/sign-in"), "anonymous visitors are sent to sign in"
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(url + "/console")


def nav(page):
    """The console's navigation landmark."""
    return page.get_by_role("navigation", name="Console")


def sign_out(page):
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/sign-in")


def test_staff_use_the_console_in_a_browser(browser):
    with serve("--webhook-attempts", "1") as url:
        req = urllib.request.Request(url + "/v1/enrol", method="POST", data=json.dumps(
            {"holder_name": "Chloé Martin", "device": {"platform": "cli", "app_version": "py"}}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as resp:
            member = json.loads(resp.read())
        card = member["card"]["card_number"]
        for email, role, shop in [("marketing@shop.example", "marketer", None),
                                  ("support@shop.example", "support", None),
                                  ("counter@shop.example", "store_staff", "st-paris-01"),
                                  ("admin@shop.example", "admin", None)]:
            status, _ = call(url, "POST", "/admin/v1/staff", {
                "email": email, "name": role.replace("_", " ").title(), "role": role,
                "store_id": shop, "password": PASSWORD})
            assert status == 201
        # An endpoint nobody answers: its deliveries die after one attempt.
        status, _ = call(url, "PUT", "/admin/v1/webhooks/crm", {"url": "http://127.0.0.1:1/hook"})
        assert status == 201

        page = browser.new_page()
        # A marketer watches the receipts move after a till's purchase: the page reads its
        # figures again every 15 s and puts them in place, without reloading (the focus stays
        # in the period's form), until paused.
        sign_in(page, url, "marketing@shop.example")
        nav(page).get_by_role("link", name="KPIs").click()
        assert page.locator('meta[http-equiv="refresh"]').count() == 0, "no timed reload"
        before = int(page.locator("#receipts").inner_text())
        as_of = page.locator("#as-of").get_attribute("datetime")
        page.get_by_label("From").focus()
        _, till = call(url, "POST", "/admin/v1/tills", {"store_id": "st-paris-01"})
        req = urllib.request.Request(url + "/v1/till/purchases", method="POST", data=json.dumps({
            "receipt": "R-KPI-1", "card_number": card, "total_cents": 4250,
            "lines": [{"sku": "tea", "category": "tea", "quantity": 1, "amount_cents": 4250}]}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {till['token']}",
                     "Idempotency-Key": "kpi-purchase-0001"})
        with urllib.request.urlopen(req) as resp:
            assert resp.status == 200
        expect(page.locator("#receipts")).to_have_text(str(before + 1), timeout=20_000)
        assert page.locator("#member-receipts").inner_text() == "1"
        assert page.locator("#revenue").inner_text() == "42.50"
        assert page.locator("#as-of").get_attribute("datetime") > as_of
        assert page.evaluate("document.activeElement.id") == "from", "not reloaded: focus kept"
        page.screenshot(path=SHOTS / "marketer-kpis.png", full_page=True)
        # Paused, the figures stay as they are; resumed, they are read again at once.
        pause = page.get_by_role("button", name="Pause live updates (every 15 s)")
        pause.click()
        assert pause.get_attribute("aria-pressed") == "true"
        purchase(url, till["token"], card, "R-KPI-2", 1000)
        page.wait_for_timeout(16_000)
        assert page.locator("#receipts").inner_text() == str(before + 1), "paused"
        pause.click()
        expect(page.locator("#receipts")).to_have_text(str(before + 2), timeout=5_000)
        assert nav(page).get_by_role("link", name="Members").count() == 0
        sign_out(page)

        # A support agent corrects the member's points.
        sign_in(page, url, "support@shop.example")
        page.screenshot(path=SHOTS / "support-home.png")
        nav(page).get_by_role("link", name="Members").click()
        page.get_by_label("Card number or member id").fill(card)
        page.get_by_label("Card number or member id").press("Enter")
        page.get_by_role("heading", name="Chloé Martin").wait_for()
        assert page.locator("#balance").inner_text() == "52", "the two purchases' points"
        page.get_by_label("Points (negative to take away)").fill("120")
        page.get_by_label("Reason").fill("Parcel lost in the post")
        page.get_by_role("button", name="Correct points").click()
        page.get_by_role("status").wait_for()
        assert page.get_by_role("status").inner_text() == "Points corrected."
        assert page.locator("#balance").inner_text() == "172"
        assert page.get_by_role("cell", name="Parcel lost in the post (by support@shop.example)").count() == 1
        page.screenshot(path=SHOTS / "support-points-corrected.png", full_page=True)
        sign_out(page)

        # Store staff find the member, without the correction form; a forged form is refused.
        sign_in(page, url, "counter@shop.example")
        assert nav(page).get_by_role("link", name="Webhooks").count() == 0
        page.goto(url + "/console/members?q=" + card)
        assert page.locator("#balance").inner_text() == "172"
        assert page.get_by_role("button", name="Correct points").count() == 0
        answer = page.request.post(url + f"/console/members/{member['member_id']}/points",
                                   form={"points": "1000", "reason": "me", "csrf": "guess"},
                                   headers={"Origin": url}, max_redirects=0)
        assert answer.status == 403
        # The member agrees, at the counter, to offers by e-mail.
        page.get_by_label("Purpose").select_option("marketing_offers")
        page.get_by_label("Channel").select_option("email")
        page.get_by_label("Granted").check()
        page.get_by_role("button", name="Record consent").click()
        assert page.get_by_role("status").inner_text() == "Consent recorded."
        row = page.get_by_role("row").filter(has_text="in_store")
        assert row.count() == 1 and "Email" in row.inner_text() and "Granted" in row.inner_text()
        page.screenshot(path=SHOTS / "store-staff-member.png", full_page=True)
        sign_out(page)

        # The admin replays the dead-letter list and reads the audit log.
        call(url, "POST", f"/admin/v1/members/{member['member_id']}/points",
             {"points": 1, "reason": "a webhook event"})
        deadline = time.monotonic() + 20
        while call(url, "GET", "/admin/v1/webhooks/crm")[1]["dead"] == 0:
            assert time.monotonic() < deadline, "the delivery never died"
            time.sleep(0.2)
        sign_in(page, url, "admin@shop.example")
        nav(page).get_by_role("link", name="Webhooks").click()
        page.get_by_role("heading", name="Dead deliveries to crm").wait_for()
        page.screenshot(path=SHOTS / "admin-webhooks.png", full_page=True)
        page.get_by_role("button", name="Replay the dead deliveries to crm").click()
        page.wait_for_url(url + "/console/webhooks")
        nav(page).get_by_role("link", name="Audit log").click()
        for action in ["points_corrected", "webhooks_replayed", "sign_out", "member_viewed"]:
            assert page.get_by_role("cell", name=action, exact=True).count() >= 1, action
        page.screenshot(path=SHOTS / "admin-audit.png", full_page=True)
        sign_out(page)

        # The member asks to be forgotten: support erase them, typing the card number again.
        sign_in(page, url, "support@shop.example")
        page.goto(url + "/console/members?q=" + card)
        page.get_by_label("Type the card number to confirm (cannot be undone)").fill("0000")
        page.get_by_role("button", name="Erase the member").click()
        assert page.get_by_role("alert").inner_text().startswith("Type the member's card number")
        page.goto(url + "/console/members?q=" + card)
        page.get_by_label("Type the card number to confirm (cannot be undone)").fill(card)
        page.get_by_role("button", name="Erase the member").click()
        assert page.get_by_role("status").inner_text() == "The member was erased."
        page.get_by_label("Card number or member id").fill(card)
        page.get_by_label("Card number or member id").press("Enter")
        assert page.get_by_role("alert").inner_text() == "No member has this card number or id."
        page.screenshot(path=SHOTS / "support-erased.png", full_page=True)
        sign_out(page)
        page.close()


def purchase(url, till, card, receipt, cents):
    req = urllib.request.Request(url + "/v1/till/purchases", method="POST", data=json.dumps({
        "receipt": receipt, "card_number": card, "total_cents": cents,
        "lines": [{"sku": "tea", "category": "tea", "quantity": 1, "amount_cents": cents}]}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {till}",
                 "Idempotency-Key": f"purchase-{receipt}-0000"})
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200


def test_store_staff_scan_the_code_the_members_app_shows(browser, tmp_path):
    """The member shows the rotating code their app draws (the phone library, enrolled against
    the server); the counter's scanner reads the drawn QR code (zxing-cpp) and types what it
    holds into the lookup, as a keyboard-wedge scanner does: the member is found, and the page
    asks again by the card number. An altered code is refused by name."""
    import tessera
    from http_client import phone
    from test_scanner import decode, to_image

    with serve() as url:
        status, _ = call(url, "POST", "/admin/v1/staff", {
            "email": "counter@shop.example", "name": "Counter", "role": "store_staff",
            "store_id": "st-paris-01", "password": PASSWORD})
        assert status == 201
        app = phone(str(tmp_path / "app.db"))
        app.enrol(url, "Inès Duval",
                  tessera.DeviceInfo(platform=tessera.Platform.IOS, app_version="1"))
        card = app.card().card_number
        [scanned] = decode(to_image(app.member_code().matrix), tessera.Symbology.QR)
        assert scanned.startswith("TM1:")

        page = browser.new_page()
        sign_in(page, url, "counter@shop.example")
        nav(page).get_by_role("link", name="Members").click()
        lookup = page.get_by_label("Card number or member id")
        lookup.fill(scanned)
        lookup.press("Enter")
        page.get_by_role("heading", name="Inès Duval").wait_for()
        assert page.locator("#card").inner_text() == card
        assert lookup.input_value() == card, "asked again by the card, not a code good for a minute"
        page.screenshot(path=SHOTS / "store-staff-member-code.png", full_page=True)

        altered = scanned[:-8] + ("A" if scanned[-8] != "A" else "B") + scanned[-7:]
        lookup.fill(altered)
        lookup.press("Enter")
        alert = page.get_by_role("alert")
        alert.wait_for()
        assert alert.inner_text().startswith("This member code was refused")
        assert page.get_by_role("heading", name="Inès Duval").count() == 0
        assert lookup.input_value() == ""
        page.screenshot(path=SHOTS / "store-staff-member-code-refused.png", full_page=True)
        page.close()


def test_support_decide_a_coupon_redeemed_at_two_offline_tills(browser, tmp_path):
    """A member's coupon is redeemed at two tills that were offline (the phone library and the
    till library, as the apps and tills run them); when the tills report, the server counts
    the first and records a conflict. A support agent reads it in the console, decides it with
    a note (a missing note is refused), and sees the decision in place of the form."""
    import tessera
    from http_client import PyHttpClient, phone

    with serve() as url:
        assert call(url, "POST", "/admin/v1/staff", {
            "email": "support@shop.example", "name": "Support", "role": "support",
            "password": PASSWORD})[0] == 201
        app = phone(str(tmp_path / "app.db"))
        app.enrol(url, "Chloé Martin",
                  tessera.DeviceInfo(platform=tessera.Platform.ANDROID, app_version="1"))
        app.clip_offer("of-009")
        app.sync()
        code = next(c.code for c in app.wallet() if c.offer_id == "of-009")
        tills = []
        for i in range(2):
            _, till = call(url, "POST", "/admin/v1/tills", {"store_id": "st-paris-01"})
            journal = str(tmp_path / f"till-{i}.journal")
            tessera.Till.open(journal, url, till["token"], "st-paris-01", PyHttpClient())  # keys
            offline = tessera.Till.open(journal, "http://127.0.0.1:9", till["token"], "st-paris-01",
                                        PyHttpClient())
            assert offline.redeem(code, 2500, f"R-OFF-{i}") is None, "journaled offline"
            tills.append((journal, till["token"]))
        reports = [tessera.Till.open(j, url, t, "st-paris-01", PyHttpClient()).sync() for j, t in tills]
        assert sum(len(r.conflicts) for r in reports) == 1

        page = browser.new_page()
        sign_in(page, url, "support@shop.example")
        nav(page).get_by_role("link", name="Conflicts").click()
        conflict = page.get_by_role("region", name="Coupon")
        expect(conflict).to_contain_text("(offer of-009)")
        expect(conflict).to_contain_text("receipt R-OFF-")
        page.screenshot(path=SHOTS / "support-conflict.png", full_page=True)
        assert accessibility_violations(page) == []
        conflict.get_by_label("Outcome").select_option("recovered")
        conflict.get_by_role("button", name="Decide").click()
        # The browser holds the form back without a note (the field is required); the server
        # refuses one sent without it too (tests/e2e/tests/console.rs).
        assert page.url.endswith("/console/conflicts")
        conflict.get_by_label("Note").fill("The shop refunded the second discount")
        conflict.get_by_label("Note").press("Enter")
        page.wait_for_load_state()
        decided = page.get_by_role("region", name="Coupon")
        expect(decided).to_contain_text(
            "Decided: recovered by support@shop.example")
        expect(decided).to_contain_text("The shop refunded the second discount")
        assert decided.get_by_role("button", name="Decide").count() == 0
        page.screenshot(path=SHOTS / "support-conflict-decided.png", full_page=True)
        page.close()
        _, listed = call(url, "GET", "/admin/v1/redemption-conflicts")
        assert listed[0]["resolution"]["outcome"] == "recovered"


def test_two_factor_sign_in_in_a_browser(browser):
    """A member of staff turns two-factor sign-in on: an authenticator app (pyotp, an independent
    TOTP implementation) scans the QR code the page draws (read by zxing-cpp from the page's
    pixels) and its code turns it on; then signing in takes the app's code, and a wrong one is
    refused like a wrong password."""
    import pyotp

    with serve() as url:
        assert call(url, "POST", "/admin/v1/staff", {
            "email": "counter@shop.example", "name": "Counter", "role": "store_staff",
            "store_id": "st-paris-01", "password": PASSWORD})[0] == 201
        page = browser.new_page()
        sign_in(page, url, "counter@shop.example")
        nav(page).get_by_role("link", name="Two-factor").click()
        qr = page.get_by_role("img", name="QR code of the key, for an authenticator app")
        expect(qr).to_be_visible()
        # The app scans the QR code: zxing-cpp reads the otpauth:// link from the page's pixels.
        import io
        import zxingcpp
        from PIL import Image
        [link] = [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.screenshot())))]
        app = pyotp.parse_uri(link)
        assert link.startswith("otpauth://totp/Tessera%20console:counter%40shop.example?")
        assert app.secret == page.locator("#totp-secret").inner_text(), "the key typed or scanned"
        assert app.issuer == "Tessera console"
        page.get_by_label("Code from your authenticator app").fill(app.now())
        page.get_by_label("Your password").fill(PASSWORD)
        page.get_by_role("button", name="Turn two-factor sign-in on").click()
        expect(page.get_by_role("status")).to_have_text(
            "Two-factor sign-in is on: your other sessions have ended.")
        page.screenshot(path=SHOTS / "two-factor-on.png", full_page=True)
        sign_out(page)

        def attempt(code):
            page.get_by_label("E-mail address").fill("counter@shop.example")
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_label("Code from your authenticator app").fill(code)
            page.get_by_label("Code from your authenticator app").press("Enter")

        page.goto(url + "/console/sign-in")
        attempt("000000")
        expect(page.get_by_role("alert")).to_have_text("Wrong e-mail address, password or code.")
        # The step that turned it on was used: the app's next code (within a step of skew).
        attempt(app.at(time.time() + 30))
        page.wait_for_url(url + "/console")
        page.screenshot(path=SHOTS / "two-factor-signed-in.png", full_page=True)
        page.close()


def test_a_marketer_analyses_the_programme_and_sends_a_campaign_to_a_segment(browser):
    """Store staff record a member's consent to offers by push at the counter; a marketer runs
    the analysis from the console, reads the segments, builds an audience of regulars of a shop
    (counted within consent as it is built: of the two regulars, the one who consented; a shop
    not in the catalog named), and sends a push campaign to it; the campaign's results appear
    in the list."""
    with serve() as url:
        members = []
        for name in ["Chloé Martin", "Hugo Bernard", "Inès Petit"]:
            req = urllib.request.Request(url + "/v1/enrol", method="POST", data=json.dumps(
                {"holder_name": name, "device": {"platform": "cli", "app_version": "py"}}).encode(),
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req) as resp:
                members.append(json.loads(resp.read()))
        cards = [m["card"]["card_number"] for m in members]
        _, till = call(url, "POST", "/admin/v1/tills", {"store_id": "st-paris-01"})
        for n, (card, times) in enumerate(zip(cards, [3, 2, 1])):
            for k in range(times):
                purchase(url, till["token"], card, f"R-{n}-{k}", 2500 + 100 * k)
        status, settings = call(url, "GET", "/admin/v1/analytics/settings")
        settings["segments"].append({"name": "regulars", "purchases_over": 1, "window_days": 30})
        assert call(url, "PUT", "/admin/v1/analytics/settings", settings)[0] == 200
        for email, role, shop in [("marketing@shop.example", "marketer", None),
                                  ("counter@shop.example", "store_staff", "st-paris-01")]:
            status, _ = call(url, "POST", "/admin/v1/staff", {
                "email": email, "name": role.replace("_", " ").title(), "role": role,
                "store_id": shop, "password": PASSWORD})
            assert status == 201

        page = browser.new_page()
        # At the counter, the first member agrees to offers by push.
        sign_in(page, url, "counter@shop.example")
        page.goto(url + "/console/members?q=" + cards[0])
        page.get_by_label("Purpose").select_option("marketing_offers")
        page.get_by_label("Channel").select_option("push")
        page.get_by_label("Granted").check()
        page.get_by_role("button", name="Record consent").click()
        assert page.get_by_role("status").inner_text() == "Consent recorded."
        sign_out(page)

        sign_in(page, url, "marketing@shop.example")
        nav(page).get_by_role("link", name="Analytics").click()
        page.get_by_role("button", name="Run the analysis now").click()
        assert page.get_by_role("status").inner_text().startswith("A run was asked for")
        deadline = time.monotonic() + 60
        while page.locator("#segments").count() == 0 or "regulars" not in page.locator("#segments").inner_text():
            assert time.monotonic() < deadline, "the run never ended"
            time.sleep(0.3)
            page.goto(url + "/console/analytics")
        assert page.locator("#buyers").inner_text() == "3"
        assert page.locator("#active-30").inner_text() == "3"
        regulars = page.locator("#segments").get_by_role("row").filter(has_text="regulars")
        assert regulars.get_by_role("cell").nth(1).inner_text() == "2"
        page.screenshot(path=SHOTS / "marketer-analytics.png", full_page=True)

        nav(page).get_by_role("link", name="Campaigns").click()
        reach = page.locator("#reach")
        send = page.get_by_role("button", name="Send the campaign")
        expect(send).to_be_hidden()
        # Counted as it is built, without pressing Count: everyone who consented, then the
        # regulars, then the regulars of a shop they never went to, of no shop at all, and of
        # the shop they buy in.
        page.get_by_label("Tiers (comma-separated; empty: every tier)").fill(" ")
        expect(reach).to_contain_text("1 member can be reached (0 devices; 1 without a device)")
        expect(send).to_be_visible()
        page.get_by_label("regulars").check()
        shops = page.get_by_label(
            "Shops: members who chose one as a favourite or bought in one (ids, comma-separated; empty: any)")
        shops.fill("st-lyon-01")
        expect(reach).to_contain_text("0 members can be reached")
        shops.fill("st-lyon-01, st-nope")
        expect(reach).to_have_text('campaign.audience.shops: no shop "st-nope" in the catalog')
        expect(send).to_be_hidden()
        shops.fill("st-paris-01")
        expect(reach).to_contain_text("1 member can be reached (0 devices; 1 without a device)")
        expect(send).to_be_visible()
        page.screenshot(path=SHOTS / "marketer-audience-counted.png", full_page=True)
        page.get_by_label("Campaign id (letters, digits, - and _)").fill("regulars-tea")
        page.get_by_label("Offer id (from the catalog)").fill("of-001")
        page.get_by_label("Title").fill("A tea for our regulars")
        page.get_by_label("Not shown after (UTC)").fill("2099-12-31")
        page.get_by_role("button", name="Send the campaign").click()
        assert page.get_by_role("status").inner_text().startswith("The campaign is queued")
        deadline = time.monotonic() + 30
        row = page.locator("#campaigns").get_by_role("row").filter(has_text="regulars-tea")
        while "done" not in row.inner_text():
            assert time.monotonic() < deadline, row.inner_text()
            time.sleep(0.3)
            page.reload()
        cells = [c.inner_text() for c in row.get_by_role("cell").all()]
        assert cells[1] == "segments regulars; shops st-paris-01" and cells[4] == "1", cells
        page.screenshot(path=SHOTS / "marketer-campaign.png", full_page=True)
        # An unknown offer is refused with the reason.
        page.goto(url + "/console/campaigns?segment=regulars&count=1")
        page.get_by_label("Campaign id (letters, digits, - and _)").fill("nothing")
        page.get_by_label("Offer id (from the catalog)").fill("of-nope")
        page.get_by_label("Not shown after (UTC)").fill("2099-12-31")
        page.get_by_role("button", name="Send the campaign").click()
        assert page.get_by_role("alert").inner_text() == 'No offer "of-nope" in the catalog.'
        page.goto(url + "/console")
        sign_out(page)
        page.close()


def test_a_marketer_tries_a_rule_on_a_member_publishes_it_and_rolls_it_back(browser):
    """A marketer doubles points on tea in the rule set, checks it (an invalid edit is refused
    with the reason, as it is typed and when Check is pressed), tries it on a member's purchases
    (the dry run shows what it would have given, nothing paid), publishes it, and restores the
    version before."""
    with serve() as url:
        req = urllib.request.Request(url + "/v1/enrol", method="POST", data=json.dumps(
            {"holder_name": "Chloé Martin", "device": {"platform": "cli", "app_version": "py"}}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as resp:
            member = json.loads(resp.read())
        _, till = call(url, "POST", "/admin/v1/tills", {"store_id": "st-paris-01"})
        purchase(url, till["token"], member["card"]["card_number"], "R-TEA-1", 3000)
        assert call(url, "PUT", "/admin/v1/challenges", {
            "version": 1, "challenges": [], "earning": {"points_per_euro": 1}})[0] == 204
        assert call(url, "POST", "/admin/v1/staff", {
            "email": "marketing@shop.example", "name": "Marketer", "role": "marketer",
            "password": PASSWORD})[0] == 201

        page = browser.new_page()
        sign_in(page, url, "marketing@shop.example")
        nav(page).get_by_role("link", name="Rules").click()
        editor = page.get_by_label("Rule set")
        rules = json.loads(editor.input_value())
        assert rules["earning"]["points_per_euro"] == 1
        # A mistake first: refused with the reason as it is typed and when it is checked, the
        # text kept.
        broken = dict(rules, earning={"points_per_euro": 1, "bonuses": [
            {"filter": {"categories": ["tea"]}, "extra_percent": 100}]}, challenges=[
            {"id": "x", "title": "Never", "window": {"type": "rolling_days", "days": 7},
             "goal": {"type": "count", "target": 0, "filter": {"kinds": ["purchase"]}},
             "reward": {"type": "points", "points": 5}}])
        # Checked as it is typed, by the server, without pressing Check: a slip of the JSON
        # is placed (line and column), a rule the server would refuse is named, and the
        # message goes once the text is right.
        live = page.locator("#rules-live")
        editor.fill(editor.input_value() + ",")
        expect(live).to_contain_text("Line ")
        expect(editor).to_have_attribute("aria-invalid", "true")
        editor.fill(json.dumps(broken, indent=2))
        expect(live).to_contain_text("target")
        editor.fill(json.dumps(rules, indent=2))
        expect(live).to_have_text("The rule set passes every check.")
        expect(editor).to_have_attribute("aria-invalid", "false")
        editor.fill(json.dumps(broken, indent=2))
        expect(live).to_contain_text("target")
        page.screenshot(path=SHOTS / "marketer-rules-as-typed.png", full_page=True)
        page.get_by_role("button", name="Check").click()
        assert "target" in page.get_by_role("alert").inner_text()
        assert json.loads(page.get_by_label("Rule set").input_value()) == broken
        doubled = dict(broken, challenges=[])
        page.get_by_label("Rule set").fill(json.dumps(doubled, indent=2))
        page.get_by_role("button", name="Check").click()
        assert page.get_by_role("status").inner_text() == "The rule set passes every check."
        page.get_by_label("Member to try them on (card number or id)").fill(member["card"]["card_number"])
        page.get_by_role("button", name="Try on the member").click()
        summary = page.locator("#dry-summary").inner_text()
        assert summary.startswith("Points from purchases: 30 in force, 60 with these rules"), summary
        page.screenshot(path=SHOTS / "marketer-rules-dry-run.png", full_page=True)
        page.get_by_label("Note for the version (what changed)").fill("Double points on tea")
        page.get_by_role("button", name="Publish").click()
        assert page.get_by_role("status").inner_text().startswith("Published")
        _, in_force = call(url, "GET", "/admin/v1/challenges")
        assert in_force["earning"]["bonuses"][0]["extra_percent"] == 100
        rows = page.locator("#versions").get_by_role("row")
        assert "Double points on tea" in rows.nth(1).inner_text()
        assert "marketing@shop.example" in rows.nth(1).inner_text()
        # Rolled back: the version before is published again.
        page.get_by_role("button", name=f"Restore version {rows.nth(2).get_by_role('cell').first.inner_text()}").click()
        assert page.get_by_role("status").inner_text() == "The version was published again."
        _, in_force = call(url, "GET", "/admin/v1/challenges")
        assert in_force["earning"]["bonuses"] == []
        page.screenshot(path=SHOTS / "marketer-rules-versions.png", full_page=True)
        sign_out(page)
        page.close()


def test_a_marketer_sets_up_a_welcome_journey_and_sees_what_became_of_it(browser):
    """A marketer turns the welcome journey on (a text naming a placeholder it does not know is
    refused with the reason, the text kept), runs the journeys now, and reads what became of the
    two new members: one consented at the counter but has no phone to push to, one gave no
    consent; nothing is sent to either."""
    with serve() as url:
        members = []
        for name in ("Chloé Martin", "Paul Durand"):
            req = urllib.request.Request(url + "/v1/enrol", method="POST", data=json.dumps(
                {"holder_name": name, "device": {"platform": "cli", "app_version": "py"}}).encode(),
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req) as resp:
                members.append(json.loads(resp.read()))
        status, _ = call(url, "POST", f"/admin/v1/members/{members[0]['member_id']}/consents", {
            "purpose": "marketing_offers", "channel": "push", "decision": "granted",
            "text_version": "counter-form-3", "text_sha256": "0" * 64, "source": "in_store",
            "recorded_by": "staff-paris-01"})
        assert status == 201
        # No quiet hours: what becomes of the members must not depend on the time of day the
        # test runs (the default quiet hours would make the consenting member wait at night).
        for m in members:
            req = urllib.request.Request(url + "/v1/mutations", method="POST", data=json.dumps(
                {"type": "set_preferences",
                 "changes": [{"field": "quiet_hours", "value": None}]}).encode(),
                headers={"Content-Type": "application/json",
                         "Authorization": f"Bearer {m['tokens']['access_token']}",
                         "Idempotency-Key": f"quiet-{m['member_id']}-00000000"})
            with urllib.request.urlopen(req) as resp:
                assert resp.status == 200
        assert call(url, "POST", "/admin/v1/staff", {
            "email": "marketing@shop.example", "name": "Marketer", "role": "marketer",
            "password": PASSWORD})[0] == 201

        page = browser.new_page()
        sign_in(page, url, "marketing@shop.example")
        nav(page).get_by_role("link", name="Journeys").click()
        editor = page.get_by_label("Journeys, as JSON")
        settings = json.loads(editor.input_value())
        assert settings["journeys"] == []
        welcome = {"kind": "welcome", "enabled": True, "offer_id": "of-001",
                   "title": "Welcome, {first_name}", "body": "A gift for your first visit"}
        broken = dict(settings, journeys=[welcome])
        editor.fill(json.dumps(broken, indent=2))
        page.get_by_role("button", name="Save").click()
        assert "{first_name}" in page.get_by_role("alert").inner_text()
        assert json.loads(page.get_by_label("Journeys, as JSON").input_value()) == broken
        fixed = dict(settings, journeys=[dict(welcome, title="Welcome, {name}")])
        page.get_by_label("Journeys, as JSON").fill(json.dumps(fixed, indent=2))
        page.get_by_role("button", name="Save").click()
        assert page.get_by_role("status").inner_text().startswith("Saved")
        _, in_force = call(url, "GET", "/admin/v1/journeys")
        assert in_force["journeys"][0]["title"] == "Welcome, {name}"

        page.get_by_role("button", name="Run the journeys now").click()
        assert page.get_by_role("status").inner_text().startswith("A run is queued")
        deadline = time.time() + 30
        while True:
            row = page.locator("#journey-report").get_by_role("row").nth(1).inner_text()
            if "no_consent: 1" in row and "no_device: 1" in row:
                break
            assert time.time() < deadline, row
            time.sleep(0.2)
            page.reload()
        cells = page.locator("#journey-report").get_by_role("row").nth(1).get_by_role("cell")
        # welcome, on, entered 2, sent 0, waiting 0, given up 2.
        assert [cells.nth(i).inner_text() for i in range(6)] == ["welcome", "yes", "2", "0", "0", "2"]
        page.screenshot(path=SHOTS / "marketer-journeys.png", full_page=True)
        sign_out(page)
        page.close()


# The success criteria axe-core checks for WCAG 2.1 levels A and AA: labels, names, contrast,
# landmarks' and headings' structure, ARIA, language, and the rest it can decide from a page.
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
        "resultTypes": ["violations"]}


def accessibility_violations(page):
    """What axe-core (Deque's checker, bundled by axe-playwright-python) finds on the page as
    shown, one line per rule and element."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page, options=WCAG).response["violations"]
    return [f"{v['id']} ({v['impact']}): {n['target']} {n['failureSummary']}"
            for v in found for n in v["nodes"]]


def test_every_console_page_passes_wcag_checks(browser):
    """Every page of the console, as the role that sees most of it, with content on it (a
    member with a purchase, points and consent; a webhook endpoint; a campaign audience
    counted; an analysis run), and the sign-in page, checked by axe-core for WCAG 2.1 A and AA
    (contrast included): no violation. Each page's screenshot is kept."""
    with serve("--webhook-attempts", "1") as url:
        req = urllib.request.Request(url + "/v1/enrol", method="POST", data=json.dumps(
            {"holder_name": "Chloé Martin", "device": {"platform": "cli", "app_version": "py"}}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as resp:
            card = json.loads(resp.read())["card"]["card_number"]
        _, till = call(url, "POST", "/admin/v1/tills", {"store_id": "st-paris-01"})
        purchase(url, till["token"], card, "R-A11Y-1", 4250)
        assert call(url, "PUT", "/admin/v1/webhooks/crm", {"url": "http://127.0.0.1:1/hook"})[0] == 201
        assert call(url, "POST", "/admin/v1/staff", {
            "email": "admin@shop.example", "name": "Admin", "role": "admin",
            "password": PASSWORD})[0] == 201
        assert call(url, "POST", "/admin/v1/staff", {
            "email": "counter@shop.example", "name": "Counter", "role": "store_staff",
            "store_id": "st-paris-01", "password": PASSWORD})[0] == 201

        page = browser.new_page()
        problems = {}

        def check(name):
            page.screenshot(path=SHOTS / f"a11y-{name}.png", full_page=True)
            found = accessibility_violations(page)
            if found:
                problems[name] = found

        page.goto(url + "/console/sign-in")
        check("sign-in")
        sign_in(page, url, "admin@shop.example")
        check("home")
        page.goto(url + "/console/analytics")
        page.get_by_role("button", name="Run the analysis now").click()
        for _ in range(100):
            page.goto(url + "/console/analytics")
            if page.locator("#overview").count():
                break
            time.sleep(0.2)
        check("analytics")
        for name, path in [("kpis", "/console/kpis"), ("members", "/console/members"),
                           ("member", "/console/members?q=" + card),
                           ("member-not-found", "/console/members?q=0000"),
                           ("member-code-refused", "/console/members?q=TM1:NOPE"),
                           ("rules", "/console/rules"), ("loyalty", "/console/loyalty"),
                           ("journeys", "/console/journeys"),
                           ("conflicts", "/console/conflicts"), ("webhooks", "/console/webhooks"),
                           ("audit", "/console/audit"), ("staff", "/console/staff"),
                           ("password", "/console/password"), ("two-factor", "/console/two-factor"),
                           ("not-found", "/console/members/m_x/export")]:
            page.goto(url + path)
            check(name)
        page.goto(url + "/console/campaigns")
        check("campaigns")
        page.get_by_label("Tiers (comma-separated; empty: every tier)").fill(" ")
        expect(page.get_by_role("button", name="Send the campaign")).to_be_visible()
        check("campaigns-counted")
        page.close()
        assert not problems, json.dumps(problems, indent=1, ensure_ascii=False)
