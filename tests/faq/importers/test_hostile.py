"""Every hostile fixture gets a clear answer, never a traceback, and writes nothing.

The matrix is ``HOSTILE`` in tests/fixtures/make_fixtures.py: each entry says what
the file tries and what the user is told; these tests hold it to that.
"""

import socket

import pytest
from django.core.management import CommandError, call_command

from faq.importers import ImportRefused, Row, RowError, parse_file
from faq.importers.formats import Limits
from faq.models import Document, Faq
from tests.faq.importers.conftest import HOSTILE as HOSTILE_DIR
from tests.faq.importers.conftest import SAMPLES
from tests.fixtures.make_fixtures import HOSTILE, Hostile

REFUSED = [h for h in HOSTILE if h.refused]
REPORTED = [h for h in HOSTILE if not h.refused]


def by_name(cases: list[Hostile]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("case", cases, ids=[h.name for h in cases])


def read(case: Hostile) -> tuple[list[Row], list[RowError]]:
    data = (HOSTILE_DIR / case.name).read_bytes()
    return parse_file(case.name, data, limits=Limits(**case.limits))


def test_the_matrix_covers_at_least_thirty_files_all_on_disk():
    assert len(HOSTILE) >= 30
    assert sorted(p.name for p in HOSTILE_DIR.iterdir()) == sorted(
        h.name for h in HOSTILE
    )


@by_name(REFUSED)
def test_a_hostile_file_is_refused_with_a_clear_reason(case):
    with pytest.raises(ImportRefused) as refusal:
        read(case)
    if case.exact:
        assert str(refusal.value) == case.told
    else:
        assert str(refusal.value).startswith(case.told)


@by_name(REPORTED)
def test_a_hostile_row_is_reported_on_its_line(case):
    rows, errors = read(case)
    assert "\n".join(str(e) for e in errors) == case.told


@pytest.mark.django_db
@by_name(HOSTILE)
def test_the_import_command_refuses_a_hostile_file_and_writes_nothing(
    case, monkeypatch, capsys
):
    # The command's own limits are generous; the cases that test a limit set it small.
    monkeypatch.setattr(Limits, "for_shell", lambda: Limits(**case.limits))
    with pytest.raises(CommandError) as failure:
        call_command("import_content", str(HOSTILE_DIR / case.name))
    if case.refused:
        assert str(failure.value).startswith(case.told)
    else:
        assert "invalid rows: nothing was imported" in str(failure.value)
        assert capsys.readouterr().err.splitlines() == case.told.splitlines()
    assert Faq.objects.count() == Document.objects.count() == 0


def hostile(name: str) -> Hostile:
    return next(h for h in HOSTILE if h.name == name)


def test_a_zip_bomb_is_refused():
    with pytest.raises(ImportRefused, match="compressed 1027:1, more than 100:1"):
        read(hostile("zip-bomb.zip"))


def test_a_bzip2_member_is_refused_before_a_block_of_it_is_unpacked():
    import io
    import zipfile

    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("faq.csv", "question,answer\n" + "x," * 10_000_000)
    assert len(packed.getvalue()) < 10_000  # 20 MB in a few kilobytes
    with pytest.raises(ImportRefused, match="only stored or deflated"):
        parse_file("bundle.zip", packed.getvalue(), limits=Limits())


def test_a_zip_nested_three_deep_is_refused_but_one_level_is_read(parse_sample):
    with pytest.raises(ImportRefused, match="nested more than 1 level deep"):
        read(hostile("zip-nested-3-deep.zip"))
    rows, _ = parse_sample("bundle.zip")
    assert rows[-1].source == "bundle.zip/more.zip/extra.jsonl"


def test_a_zip_member_that_climbs_out_of_its_folder_refuses_the_archive():
    with pytest.raises(ImportRefused, match=r"unsafe path \('../../etc/passwd'\)"):
        read(hostile("zip-path-traversal.zip"))


def test_an_encrypted_pdf_is_refused():
    with pytest.raises(ImportRefused, match="is password-protected"):
        read(hostile("pdf-encrypted.pdf"))


def test_json_nested_100000_deep_is_refused_without_a_recursion_error():
    with pytest.raises(ImportRefused, match="nested deeper than 32 levels"):
        read(hostile("json-deep.json"))


def test_binary_content_under_a_text_extension_is_refused():
    for name in ("binary-png.csv", "binary-elf.txt", "binary-png.md", "nul-bytes.txt"):
        with pytest.raises(ImportRefused, match="not text"):
            read(hostile(name))


@pytest.mark.parametrize(
    "name", ["docx-bomb.docx", "docx-entities.docx", "docx-lying-size.docx"]
)
def test_a_hostile_word_package_is_refused_before_python_docx_opens_it(
    name, monkeypatch
):
    from docx.package import Package

    opened: list[object] = []
    monkeypatch.setattr(Package, "open", lambda stream: opened.append(stream))
    with pytest.raises(ImportRefused, match=f"^{name}: "):
        read(hostile(name))
    assert opened == []


def test_python_docx_parses_xml_without_resolving_entities(tmp_path):
    from docx.oxml import parse_xml

    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    xml = (
        f'<!DOCTYPE p [<!ENTITY inner "EXPANDED"><!ENTITY outer SYSTEM '
        f'"{secret.as_uri()}">]>'
        '<w:p xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        "<w:r><w:t>a&inner;b&outer;c</w:t></w:r></w:p>"
    )
    text = "".join(parse_xml(xml.encode()).itertext())
    assert "EXPANDED" not in text and "SECRET" not in text


def test_nothing_a_word_document_links_to_is_fetched(monkeypatch):
    attempts: list[object] = []
    monkeypatch.setattr(socket.socket, "connect", lambda *a: attempts.append(a))
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: attempts.append(a))
    _, errors = read(hostile("docx-linked-picture.docx"))
    rows, _ = parse_file("guide.docx", (SAMPLES / "guide.docx").read_bytes())
    assert [e.line for e in errors] == [4] and len(rows) == 1
    assert attempts == []
