"""The card surface from Python: create, reopen, typed errors, recovery, panics, logging."""

import threading

import pytest

import tessera
from tessera import BarcodeError, MemberCard, Program, StorageError, Symbology

PROGRAM = Program(id="maison-dupont", name="Maison Dupont", brand_color="#0a7d5a", symbology=Symbology.EAN13)
CARD = MemberCard(card_number="400638133393", holder_name="Ada Lovelace", member_since="2021-03-04", tier_label=None)


def test_create_reopen_and_show(tmp_path):
    path = str(tmp_path / "t.db")
    t = tessera.Tessera.open(path)
    with pytest.raises(tessera.CardError.NotEnrolled):
        t.card()
    t.set_program(PROGRAM)
    view = t.set_card(CARD)
    assert view.barcode.encoded_value == "4006381333931"
    t.shutdown()
    with pytest.raises(tessera.CardError.Storage) as closed:
        t.card()
    assert isinstance(closed.value.problem, StorageError.Closed)

    view = tessera.Tessera.open(path).card()
    assert view.program_name == "Maison Dupont"
    assert view.brand_color == "#0A7D5A"
    assert view.holder_name == "Ada Lovelace"
    assert view.tier_label is None
    assert (view.barcode.width, view.barcode.height, len(view.barcode.modules)) == (95, 1, 95)
    assert view.barcode.human_readable == "4006381333931"


def test_typed_errors(tmp_path):
    t = tessera.Tessera.open(str(tmp_path / "t.db"))
    with pytest.raises(tessera.CardError.NoProgram):
        t.set_card(CARD)
    t.set_program(PROGRAM)
    with pytest.raises(tessera.CardError.InvalidCardNumber) as e:
        t.set_card(MemberCard(card_number="4006381333932", holder_name="A", member_since="2021-03-04", tier_label=None))
    assert isinstance(e.value.problem, BarcodeError.InvalidCheckDigit)
    assert (e.value.problem.expected, e.value.problem.found) == (1, 2)
    with pytest.raises(tessera.CardError.InvalidInput) as e:
        t.set_card(MemberCard(card_number="400638133393", holder_name="", member_since="2021-03-04", tier_label=None))
    assert e.value.field == "card.holder_name"
    with pytest.raises(tessera.CardError.InvalidInput):
        t.set_program(Program(id="bad id", name="X", brand_color="#000000", symbology=Symbology.QR))
    with pytest.raises(BarcodeError.TooLong):
        tessera.render_barcode(Symbology.CODE128, "9" * 41)
    with pytest.raises(BarcodeError.UnsupportedCharacter):
        tessera.render_barcode(Symbology.CODE128, "naïve")


def test_not_a_database_then_recovered(tmp_path):
    f = tmp_path / "garbage.db"
    f.write_bytes(b"\x00\x01 definitely not SQLite " * 400)
    with pytest.raises(StorageError.NotADatabase):
        tessera.Tessera.open(str(f))
    moved = tessera.quarantine_database(str(f))
    assert moved.startswith(str(f) + ".corrupt-")
    t = tessera.Tessera.open(str(f))
    t.set_program(PROGRAM)
    assert t.set_card(CARD).holder_name == "Ada Lovelace"


def test_panic_becomes_an_exception():
    with pytest.raises(tessera.InternalError):
        tessera.verify_panic_handling("from Python")
    assert tessera.tessera_version()


def test_analysis():
    a = tessera.analyse_card_number("4006381333931")
    assert a.suggestions[0].symbology == Symbology.EAN13
    assert not a.suggestions[0].differs_from_printed
    a = tessera.analyse_card_number("GOLD-2291")
    assert a.suggestions[0].symbology == Symbology.CODE128
    with pytest.raises(BarcodeError.Empty):
        tessera.analyse_card_number("")


def test_concurrent_readers_and_writer(tmp_path):
    """The object is shared across threads, as a shell's dispatcher would."""
    t = tessera.Tessera.open(str(tmp_path / "t.db"))
    t.set_program(PROGRAM)
    t.set_card(CARD)
    errors = []

    def read():
        try:
            for _ in range(200):
                assert t.card().holder_name in ("Ada Lovelace", "Grace Hopper")
        except Exception as e:  # noqa: BLE001 - collected for the assertion below
            errors.append(e)

    def write():
        try:
            for i in range(50):
                name = "Grace Hopper" if i % 2 else "Ada Lovelace"
                t.set_card(MemberCard(card_number="400638133393", holder_name=name, member_since="2021-03-04", tier_label=None))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=read) for _ in range(4)] + [threading.Thread(target=write)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
