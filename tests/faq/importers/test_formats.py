"""How formats and encodings are told apart, and the choices made for each."""

import codecs

import pytest

from faq.exports import export_csv
from faq.importers import ImportRefused, Row, parse_file
from faq.models import Faq
from tests.faq.importers.conftest import SAMPLES
from tests.fixtures.make_fixtures import docx_bytes, word_document

CSV = "question,answer\nQuel café ?,Un café noir.\n"


@pytest.mark.parametrize(
    "data",
    [
        CSV.encode(),
        codecs.BOM_UTF8 + CSV.encode(),
        codecs.BOM_UTF16_LE + CSV.encode("utf-16-le"),
        codecs.BOM_UTF16_BE + CSV.encode("utf-16-be"),
        codecs.BOM_UTF32_LE + CSV.encode("utf-32-le"),
        CSV.encode("cp1252"),
        CSV.encode("latin-1"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-le", "utf-16-be", "utf-32", "cp1252", "latin-1"],
)
def test_every_supported_encoding_reads_the_same_rows(data):
    assert parse_file("c.csv", data) == (
        [
            Row(
                2,
                "faq",
                {"question": "Quel café ?", "answer": "Un café noir."},
                "c.csv",
            )
        ],
        [],
    )


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Как изменить пароль? Откройте настройки профиля.", "cp1251"),
        (
            "Jak změnit heslo? Otevřete nastavení účtu a zvolte Heslo. Pokud jste "
            "heslo zapomněli, klikněte na odkaz Zapomenuté heslo a do e-mailu vám "
            "přijde nový odkaz. Odkaz platí jednu hodinu.",
            "cp1250",
        ),
        ("Wo finde ich die Rechnung? Ältere Rechnungen per E-Mail. Grüße", "latin-1"),
    ],
)
def test_legacy_encodings_other_than_cp1252_are_recognised(text, encoding):
    rows, _ = parse_file("note.txt", f"Title\n\n{text}\n".encode(encoding))
    assert rows[0].data["body"] == text


def test_a_byte_order_mark_that_lies_is_refused():
    with pytest.raises(ImportRefused, match="starts with a UTF-16 byte-order mark"):
        parse_file("a.txt", codecs.BOM_UTF16_LE + b"\x00\xd8abc")


@pytest.mark.parametrize(
    ("name", "data", "found"),
    [
        (
            "notes",
            b"# Title\n\nSome **bold** text.\n",
            [("document", {"title": "Title", "body": "Some bold text."})],
        ),
        (
            "readme",
            b"Just words\nand more words.\n",
            [("document", {"title": "Just words", "body": "and more words."})],
        ),
        (
            "export.data",
            b'{"question": "Q?", "answer": "A."}\n{"title": "T"}\n',
            [
                ("faq", {"question": "Q?", "answer": "A."}),
                ("document", {"title": "T", "body": ""}),
            ],
        ),
        (
            "list.data",
            b'[{"question": "Q?", "answer": "A."}]',
            [("faq", {"question": "Q?", "answer": "A."})],
        ),
    ],
)
def test_files_whose_name_does_not_tell_are_sniffed(name, data, found):
    rows, errors = parse_file(name, data)
    assert (errors, [(r.kind, r.data) for r in rows]) == ([], found)


def test_an_unknown_extension_with_html_is_read_as_a_web_page():
    page = (
        b"<!doctype html><html><head><title>Opening hours</title></head><body>"
        b"<nav>Home | Shop</nav><article><p>We are open from nine to five on "
        b"weekdays, and from ten to two on Saturdays; on public holidays we stay "
        b"closed, but the help centre answers questions all day long.</p>"
        b"</article></body></html>"
    )
    rows, _ = parse_file("hours.aspx", page)
    assert rows[0].data["title"] == "Opening hours"
    assert rows[0].data["body"].startswith("We are open from nine to five")


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("a.csv", "question\tanswer"),
        ("a.csv", "question;answer"),
        ("a.tsv", "question,answer"),
    ],
)
def test_the_delimiter_is_the_one_that_makes_sense_of_the_header(name, header):
    delimiter = header[len("question")]
    first, second = (d for d in ",;\t" if d != delimiter)  # in cells, unquoted
    question, answer = f"Q{first} really?", f"A{second} yes."
    data = f"{header}\n{question}{delimiter}{answer}\n".encode()
    rows, errors = parse_file(name, data)
    assert (errors, rows[0].data) == ([], {"question": question, "answer": answer})


def test_a_header_with_two_columns_for_one_field_is_refused():
    with pytest.raises(ImportRefused, match="more than one column for body"):
        parse_file("d.csv", b"title,body,text\nT,B,X\n")


def test_a_markdown_file_whose_sections_are_not_questions_is_one_document():
    rows, _ = parse_file(
        "guide.md", b"# Guide\n\n## Install\n\nRun it.\n\n## Use\n\nGo."
    )
    assert [(r.kind, r.data) for r in rows] == [
        ("document", {"title": "Guide", "body": "Install\n\nRun it.\n\nUse\n\nGo."})
    ]


@pytest.mark.parametrize("name", ["faq.zip", "faq-export", "FAQ.DOCX", "faq.csv"])
def test_a_word_document_is_told_by_its_content_whatever_its_name(name):
    data = (SAMPLES / "faq.docx").read_bytes()
    rows, errors = parse_file(name, data)
    assert (errors, [(r.line, r.source) for r in rows]) == ([], [(2, name), (5, name)])


def test_word_text_keeps_tracked_insertions_and_content_controls_only():
    from docx.enum.style import WD_STYLE_TYPE
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    document = word_document(("TOC Heading", "Contents"))
    document.styles.add_style("TOC 1", WD_STYLE_TYPE.PARAGRAPH)
    document.add_paragraph("Paying\t1", style="TOC 1")
    document.add_heading("Paying", level=1)
    for xml in (
        '<w:p><w:r><w:t xml:space="preserve">Pay </w:t></w:r>'
        '<w:del w:id="1" w:author="A"><w:r><w:delText>by cheque</w:delText></w:r>'
        '</w:del><w:ins w:id="2" w:author="A"><w:r><w:t>by card</w:t></w:r></w:ins>'
        "<w:r><w:t>.</w:t></w:r></w:p>",
        "<w:sdt><w:sdtPr/><w:sdtContent><w:p><w:r><w:t>In a content control."
        "</w:t></w:r></w:p></w:sdtContent></w:sdt>",
    ):
        element = parse_xml(xml.replace(">", f" {nsdecls('w')}>", 1))
        document.element.body.sectPr.addprevious(element)
    rows, _ = parse_file("changes.docx", docx_bytes(document))
    assert rows[0].data == {
        "title": "Paying",
        "body": "Pay by card.\n\nIn a content control.",
    }


def test_a_long_first_line_is_not_taken_for_a_title():
    text = "This first line goes on and on. " * 5 + "\nSecond line."
    rows, _ = parse_file("essay.txt", text.encode())
    assert rows[0].data["title"] == "essay"
    assert rows[0].data["body"] == text.strip()


@pytest.mark.django_db
def test_a_csv_export_round_trips_through_import(collection):
    Faq.objects.create(
        collection=collection,
        question='=HYPERLINK("x")?',
        answer="-1 + @cell\non two lines",
        category="'=a",
        published=False,
    )
    exported = "".join(export_csv(collection, kind="faq")).encode()
    rows, errors = parse_file("help-faqs.csv", exported)
    assert errors == []
    assert [r.data for r in rows] == [
        {
            "question": '=HYPERLINK("x")?',
            "answer": "-1 + @cell\non two lines",
            "category": "'=a",
            "published": False,
        }
    ]
