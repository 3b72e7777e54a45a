"""Scanner check: every symbology, a few hundred generated values each, rendered by Tessera and
decoded by an independent decoder (zxing-cpp, C++). The decoded text must equal the value.

Check digits are computed here, independently of the library under test."""

import io
import random

import numpy as np
import pytest
import zxingcpp
from PIL import Image

import tessera
from http_client import phone
from tessera import Symbology

PER_SYMBOLOGY = 300
SCALE = 3  # pixels per module

FORMATS = {
    Symbology.QR: zxingcpp.BarcodeFormat.QRCode,
    Symbology.CODE128: zxingcpp.BarcodeFormat.Code128,
    Symbology.EAN13: zxingcpp.BarcodeFormat.EAN13,
    Symbology.EAN8: zxingcpp.BarcodeFormat.EAN8,
    Symbology.UPC_A: zxingcpp.BarcodeFormat.UPCA,
    Symbology.PDF417: zxingcpp.BarcodeFormat.PDF417,
    Symbology.AZTEC: zxingcpp.BarcodeFormat.Aztec,
}

TEXT_ALPHABET = (
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 -_./:#@+"
    "éèàçÜßøÅ€£漢字カード😀"
)


def gs1_check(payload: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(payload)))
    return str((10 - total % 10) % 10)


def values(symbology, n, rng):
    for _ in range(n):
        if symbology in (Symbology.EAN13, Symbology.EAN8, Symbology.UPC_A):
            length = {Symbology.EAN13: 12, Symbology.EAN8: 7, Symbology.UPC_A: 11}[symbology]
            payload = "".join(rng.choice("0123456789") for _ in range(length))
            yield payload + gs1_check(payload)
        elif symbology == Symbology.CODE128:
            text = ""
            while not text.strip() or text != text.strip():
                text = "".join(chr(rng.randint(0x20, 0x7E)) for _ in range(rng.randint(1, 40)))
            yield text
        else:
            text = ""
            while not text.strip() or text != text.strip():
                text = "".join(rng.choice(TEXT_ALPHABET) for _ in range(rng.randint(1, 120)))
            yield text


def to_image(m) -> np.ndarray:
    """Draw the matrix as a shell would: quiet zone, square modules, tall bars for linear codes."""
    modules = np.frombuffer(m.modules, dtype=np.uint8).reshape(m.height, m.width)
    if m.height == 1:
        modules = np.repeat(modules, 50, axis=0)
    q = m.quiet_zone
    canvas = np.pad(modules, ((q, q), (q, q)), constant_values=0)
    pixels = np.where(canvas == 1, 0, 255).astype(np.uint8)
    return np.kron(pixels, np.ones((SCALE, SCALE), dtype=np.uint8))


def scanned(symbology, value):
    """What zxing-cpp reports for `value`. It gives UPC-A in its 13-digit GTIN form (a leading
    0): the bars of UPC-A 036000291452 and EAN-13 0036000291452 are the same by definition."""
    return "0" + value if symbology == Symbology.UPC_A else value


def decode(image, symbology):
    found = zxingcpp.read_barcodes(image, formats=FORMATS[symbology], text_mode=zxingcpp.TextMode.Plain)
    return [r.text for r in found]


@pytest.mark.parametrize("symbology", list(FORMATS), ids=lambda s: s.name)
def test_every_rendered_code_scans_back(symbology):
    rng = random.Random(f"tessera-{symbology.name}")
    failures = []
    for value in values(symbology, PER_SYMBOLOGY, rng):
        m = tessera.render_barcode(symbology, value)
        assert m.encoded_value == value
        texts = decode(to_image(m), symbology)
        if texts != [scanned(symbology, value)]:
            failures.append((value, texts))
    assert failures == [], f"{len(failures)} of {PER_SYMBOLOGY} did not scan back: {failures[:5]}"


@pytest.mark.parametrize("symbology", list(FORMATS), ids=lambda s: s.name)
def test_png_output_scans_back(symbology):
    rng = random.Random(f"png-{symbology.name}")
    for value in values(symbology, 20, rng):
        png = tessera.barcode_png(tessera.render_barcode(symbology, value), 3)
        image = Image.open(io.BytesIO(png))
        assert decode(image, symbology) == [scanned(symbology, value)]


def test_the_card_screen_scans_as_the_card_number(tmp_path):
    """The barcode `card()` returns is what the till reads, for a typed number without its check digit."""
    from tessera import MemberCard, Program

    t = tessera.Tessera.open(str(tmp_path / "t.db"))
    t.set_program(Program(id="p", name="P", brand_color="#000000", symbology=Symbology.EAN13))
    view = t.set_card(MemberCard(card_number="4006 3813 3393", holder_name="A", member_since="2020-01-01", tier_label=None))
    assert decode(to_image(view.barcode), Symbology.EAN13) == ["4006381333931"]


def test_a_wallet_coupon_scans_as_its_signed_code(tmp_path, server_url):
    """Clip an offer, sync, render the coupon from the wallet as a QR code: a real decoder reads
    back exactly the signed code a till verifies."""
    t = phone(str(tmp_path / "wallet.db"))
    t.enrol(server_url, "Chloé Martin", tessera.DeviceInfo(platform=tessera.Platform.ANDROID, app_version="1"))
    t.clip_offer("of-009")
    t.sync()
    [coupon] = [c for c in t.wallet() if c.offer_id == "of-009"]
    assert coupon.code.startswith("TC1.")
    assert isinstance(coupon.state, tessera.CouponState.AVAILABLE)
    matrix = tessera.render_barcode(Symbology.QR, coupon.code)
    assert decode(to_image(matrix), Symbology.QR) == [coupon.code]


def test_the_rotating_member_code_scans_as_drawn(tmp_path, server_url):
    """Enrol: the phone's key is certified; the rotating member code the card screen draws (a QR
    code, base45 in alphanumeric mode) reads back exactly with zxing-cpp, and names no one in
    clear: a till verifies it with the programme's keys (the Rust tests do)."""
    t = phone(str(tmp_path / "code.db"))
    t.enrol(server_url, "Chloé Martin", tessera.DeviceInfo(platform=tessera.Platform.ANDROID, app_version="1"))
    view = t.member_code()
    assert view.code.startswith("TM1:")
    assert view.matrix.width == view.matrix.height
    assert 0 < view.changes_in_ms <= 30_000
    assert decode(to_image(view.matrix), Symbology.QR) == [view.code]
    # Programmes whose tills read PDF417 draw the same code in it (the card screen's other 2D
    # format): the project's encoder, read back by zxing-cpp.
    stacked = tessera.render_barcode(Symbology.PDF417, view.code)
    assert decode(to_image(stacked), Symbology.PDF417) == [view.code]
    t.sign_out(True)
    with pytest.raises(tessera.MemberCodeUnavailable.NotEnrolled):
        t.member_code()
