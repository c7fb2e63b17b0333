"""Limits and the safety net: time, rows, archive sizes, and nothing but refusals."""

import io
import random
import signal
import threading
import time
import zipfile

import pytest

from faq.importers import ImportRefused, parse_file
from faq.importers.formats import Limits, plaintext
from faq.importers.formats.deadline import deadline
from tests.faq.importers.conftest import SAMPLES
from tests.fixtures.make_fixtures import build_zip, small_csv

WORD_FAQS = (SAMPLES / "faq.docx").read_bytes()


def slow_parse(name: str, text: str) -> object:
    time.sleep(5)
    raise AssertionError("the deadline should have stopped this")


def test_reading_that_takes_too_long_is_refused(monkeypatch):
    monkeypatch.setattr(plaintext, "parse", slow_parse)
    started = time.monotonic()
    with pytest.raises(ImportRefused, match=r"^notes.txt: took longer than 0.2 s"):
        parse_file("notes.txt", b"Title\n\nText.", limits=Limits(parse_seconds=0.2))
    assert time.monotonic() - started < 2
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_the_deadline_puts_back_the_alarm_handler_it_found():
    def mine(signum, frame):  # type: ignore[no-untyped-def]
        pass

    previous = signal.signal(signal.SIGALRM, mine)
    try:
        with deadline("x", 10):
            assert signal.getsignal(signal.SIGALRM) is not mine
        assert signal.getsignal(signal.SIGALRM) is mine
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_the_deadline_does_nothing_outside_the_main_thread(monkeypatch):
    def slow_but_fine(name: str, text: str) -> object:
        time.sleep(0.3)
        return ["a row"], []

    monkeypatch.setattr(plaintext, "parse", slow_but_fine)
    outcome: list[object] = []
    thread = threading.Thread(
        target=lambda: outcome.append(
            parse_file("a.txt", b"Some text.", limits=Limits(parse_seconds=0.05))
        )
    )
    thread.start()
    thread.join()
    assert outcome == [(["a row"], [])]


def test_a_file_with_more_rows_than_the_limit_is_refused():
    with pytest.raises(ImportRefused, match=r"^big.csv: has more than 10 rows"):
        parse_file("big.csv", small_csv(11), limits=Limits(max_rows=10))
    rows, _ = parse_file("ok.csv", small_csv(10), limits=Limits(max_rows=10))
    assert len(rows) == 10
    lines = b"".join(b'{"question": "Q%d?", "answer": "A."}\n' % i for i in range(11))
    with pytest.raises(ImportRefused, match="has more than 10 rows"):
        parse_file("big.jsonl", lines, limits=Limits(max_rows=10))


def test_rows_are_counted_across_the_members_of_a_zip():
    data = build_zip([("a.csv", small_csv(6)), ("b.csv", small_csv(6))])
    with pytest.raises(ImportRefused, match=r"^two.zip: has more than 10 rows"):
        parse_file("two.zip", data, limits=Limits(max_rows=10))


def test_nested_archives_share_one_unpacked_limit():
    inner = build_zip([("part.txt", b"words " * 1000)])  # 6 kB each once unpacked
    outer = build_zip([(f"inner{i}.zip", inner) for i in range(3)])
    with pytest.raises(ImportRefused, match="unpacks to more than the limit of 15 kB"):
        parse_file("outer.zip", outer, limits=Limits(max_zip_total_bytes=15 * 1024))


def test_reading_stops_when_a_member_unpacks_to_more_than_it_declares(monkeypatch):
    class Endless(io.RawIOBase):
        given = 0

        def read(self, size: int = -1) -> bytes:
            Endless.given += size
            return b"a" * size

    data = build_zip([("faqs.csv", small_csv())])
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, info: Endless())
    with pytest.raises(ImportRefused, match="unpacks to more than it declares"):
        parse_file("liar.zip", data)
    assert Endless.given <= 65_536  # it stopped at the first chunk past the size


def test_a_member_over_the_file_limit_is_reported_without_unpacking_it():
    data = build_zip([("big.txt", b"x" * 3000), ("faqs.csv", small_csv())])
    rows, errors = parse_file("a.zip", data, limits=Limits(max_file_bytes=2048))
    assert [str(e) for e in errors] == [
        "a.zip/big.txt: line 1: is 2.9 kB, more than the limit of 2 kB"
    ]
    assert [r.source for r in rows] == ["a.zip/faqs.csv"]


def test_a_word_part_over_the_file_limit_is_refused_before_it_is_unpacked():
    with pytest.raises(ImportRefused) as refusal:
        parse_file("faq.docx", WORD_FAQS, limits=Limits(max_file_bytes=100 * 1024))
    assert str(refusal.value) == (
        "faq.docx: word/styles.xml would unpack to 341.4 kB, more than the limit "
        "of 100 kB"
    )


def test_a_word_part_compressed_in_a_way_word_never_uses_is_refused():
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(WORD_FAQS)) as package,
        zipfile.ZipFile(buffer, "w") as copy,
    ):
        for info in package.infolist():
            bzip2 = info.filename == "word/document.xml"
            method = zipfile.ZIP_BZIP2 if bzip2 else zipfile.ZIP_DEFLATED
            copy.writestr(info.filename, package.read(info), compress_type=method)
    with pytest.raises(
        ImportRefused, match="document.xml is compressed with method 12"
    ):
        parse_file("faq.docx", buffer.getvalue())


def test_word_documents_in_a_zip_share_its_unpacked_limit():
    with zipfile.ZipFile(io.BytesIO(WORD_FAQS)) as package:
        unpacked = sum(info.file_size for info in package.infolist())
    outer = build_zip([(f"faq{i}.docx", WORD_FAQS) for i in range(3)])
    limit = Limits(max_zip_total_bytes=unpacked * 5 // 2)
    with pytest.raises(ImportRefused, match="unpacks to more than the limit"):
        parse_file("outer.zip", outer, limits=limit)
    rows, _ = parse_file(
        "outer.zip", outer, limits=Limits(max_zip_total_bytes=unpacked * 4)
    )
    assert len(rows) == 6


def test_a_word_file_with_more_faqs_than_the_limit_is_refused():
    with pytest.raises(ImportRefused, match=r"^faq.docx: has more than 1 rows"):
        parse_file("faq.docx", WORD_FAQS, limits=Limits(max_rows=1))


def test_a_bug_in_a_parser_is_a_refusal_not_a_traceback(monkeypatch, caplog):
    def broken(name: str, text: str) -> object:
        raise KeyError("oops")

    monkeypatch.setattr(plaintext, "parse", broken)
    with pytest.raises(ImportRefused, match=r"^a.txt: could not be read"):
        parse_file("a.txt", b"Some text.")
    assert "reading a.txt failed" in caplog.text  # the traceback goes to the log


def mutations(data: bytes, seed: int) -> list[bytes]:
    """The file cut short at several places, and with bytes overwritten at random."""
    rnd = random.Random(seed)
    cuts = [data[: len(data) * n // 8] for n in range(1, 8)]
    flipped = []
    for _ in range(8):
        copy = bytearray(data)
        for _ in range(max(1, len(copy) // 50)):
            copy[rnd.randrange(len(copy))] = rnd.randrange(256)
        flipped.append(bytes(copy))
    return cuts + flipped


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.iterdir()))
def test_damaged_copies_of_every_sample_never_raise_anything_else(name):
    data = (SAMPLES / name).read_bytes()
    for number, damaged in enumerate(mutations(data, seed=len(name))):
        try:
            rows, errors = parse_file(name, damaged)
        except ImportRefused as refusal:
            assert str(refusal).startswith(f"{name}"), number
        else:
            assert rows or errors, number
