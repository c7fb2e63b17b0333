"""One real file of every format gives exactly the rows a person would expect."""

import pytest
from django.core.management import call_command

from faq.importers import Row
from faq.models import Document, Faq
from tests.faq.importers.conftest import SAMPLES


def faq(line: int, source: str, **data: object) -> Row:
    return Row(line, "faq", data, source)


def doc(line: int, source: str, **data: object) -> Row:
    return Row(line, "document", data, source)


GUIDE_BODY = (
    "Acme keeps your help content in one place. Read the install notes first.\n\n"
    "Installing\n\n"
    "Download the installer.\nRun acme setup and follow the prompts.\n\n"
    'acme setup --team "Support"\n\n'
    "Plan | Seats\nFree | 3\nTeam | 25\n\n"
    "The Acme dashboard"
)
MANUAL_BODY = (
    "Acme Router Manual\nThank you for choosing the Acme router.\f"
    "Setting up\nPlug the router into power and wait for the green light.\f"
    "Troubleshooting\nIf the light stays red, hold Reset for ten seconds."
)
WORD_GUIDE_BODY = (
    "Acme keeps your help content in one place. Read the install notes first.\n\n"
    "Installing\n\n"
    "Download the installer.\nRun acme setup and follow the prompts.\n\n"
    "Plan | Seats\nFree | 3\nTeam | 25\n\n"
    "Troubleshooting\n\n"
    "If setup stops, run it again with --verbose."
)
WORD_FAQS = [
    (
        2,
        {
            "question": "How do I update my card?",
            "answer": "Open Billing, then Payment method, and enter the new card.",
            "category": "Billing",
        },
    ),
    (
        5,
        {
            "question": "Can I get a receipt?",
            "answer": "Yes. Every payment sends one by email:\n\n"
            "to the account owner\nto any billing contact",
            "category": "Billing",
        },
    ),
]
JSONL_ROWS = [
    (
        1,
        "faq",
        {
            "question": "How do I export my data?",
            "answer": "Choose Export in the collection's menu.",
            "category": "Data",
        },
    ),
    (
        2,
        "document",
        {"title": "Export formats", "body": "JSON Lines and CSV.", "published": False},
    ),
    (
        4,
        "faq",
        {
            "question": "Can I import a BEIR corpus?",
            "answer": "Yes, corpus.jsonl is read as documents.",
            "external_id": "7",
        },
    ),
]


def test_a_csv_gives_one_faq_per_record_on_the_line_it_starts(parse_sample):
    assert parse_sample("faqs.csv") == (
        [
            faq(
                2,
                "faqs.csv",
                question="How do I reset my password?",
                answer="Open Settings, then Security, and choose Reset password.",
                category="Account",
                external_id="faq-1",
                url="https://help.example.com/reset-password",
            ),
            faq(
                3,
                "faqs.csv",
                question="Can I pay by invoice?",
                answer="Yes. Invoices are sent on the first of each month.\n"
                "Pay them within 30 days.",
                category="Billing",
                external_id="faq-2",
            ),
            # line 5 is blank (only commas); the multi-line cell took lines 3 and 4
            faq(
                6,
                "faqs.csv",
                question="Is there a mobile app?",
                answer="The app is on iOS and Android.",
                external_id="faq-3",
            ),
        ],
        [],
    )


def test_a_tsv_header_is_read_case_insensitively_with_published(parse_sample):
    assert parse_sample("faqs.tsv") == (
        [
            faq(
                2,
                "faqs.tsv",
                question="What are your opening hours?",
                answer="We answer tickets from 8:00 to 18:00 CET, Monday to Friday.",
                category="Support",
                published=True,
            ),
            faq(
                3,
                "faqs.tsv",
                question="Do you offer refunds?",
                answer="Within 14 days of purchase, in full.",
                category="Billing",
                published=False,
            ),
        ],
        [],
    )


def test_a_csv_of_documents_with_a_utf8_bom_and_quoted_quotes(parse_sample):
    assert parse_sample("documents.csv") == (
        [
            doc(
                2,
                "documents.csv",
                title="Getting started",
                body="Create an account, then invite your team from the People page.",
                category="Guides",
                external_id="doc-1",
                url="https://help.example.com/start",
            ),
            doc(
                3,
                "documents.csv",
                title="Security overview",
                body="We encrypt data at rest and in transit. "
                '"Zero trust" is our default.',
                category="Security",
                external_id="doc-2",
            ),
        ],
        [],
    )


def test_a_semicolon_csv_is_split_on_semicolons(parse_sample):
    assert parse_sample("faqs-semicolon.csv") == (
        [
            faq(
                2,
                "faqs-semicolon.csv",
                question="Wie lange dauert der Versand?",
                answer="In der Regel 2–3 Werktage, Express 1 Tag.",
                category="Versand",
            ),
            faq(
                3,
                "faqs-semicolon.csv",
                question="Can I change my plan?",
                answer="Yes, at any time; the price is prorated.",
                category="Billing",
            ),
        ],
        [],
    )


def test_a_cp1252_csv_keeps_its_accents_and_euro_sign(parse_sample):
    rows, errors = parse_sample("faqs-cp1252.csv")
    assert errors == []
    assert [(r.line, r.data["question"], r.data["answer"]) for r in rows] == [
        (
            2,
            "Combien coûte l'abonnement ?",
            "Le tarif réduit est de 9 € par mois pour les étudiants.",
        ),
        (
            3,
            "Wo finde ich die Rechnung?",
            "Unter „Konto“ › „Rechnungen“; ältere Rechnungen per E-Mail anfordern.",
        ),
        (
            4,
            "¿Cómo cambio mi contraseña?",
            "Desde «Configuración» elija «Contraseña» y confírmela.",
        ),
    ]
    assert [r.data["category"] for r in rows] == ["Facturation", "Konto", "Cuenta"]


def test_a_utf16_csv_with_a_bom_is_read(parse_sample):
    assert parse_sample("faqs-utf16.csv") == (
        [
            faq(
                2,
                "faqs-utf16.csv",
                question="パスワードを忘れました。",
                answer="ログイン画面で「パスワードをお忘れですか」を選んでください。",
            ),
            faq(
                3,
                "faqs-utf16.csv",
                question="What is the file limit?",
                answer="Each upload may be up to 20 MB.",
            ),
        ],
        [],
    )


def test_a_json_list_reports_the_line_each_object_starts_on(parse_sample):
    assert parse_sample("faqs.json") == (
        [
            faq(
                2,
                "faqs.json",
                question="Where is my order?",
                answer="Open Orders to see where each parcel is.",
                category="Orders",
            ),
            faq(
                7,
                "faqs.json",
                question="Can I cancel an order?",
                answer="Until it ships.",
                external_id="42",
            ),
            doc(
                8,
                "faqs.json",
                title="Shipping policy",
                body="We ship within two working days.",
                url="https://help.example.com/shipping",
            ),
        ],
        [],
    )


def test_json_lines_keep_their_line_numbers(parse_sample):
    rows, errors = parse_sample("faqs.jsonl")
    assert errors == []
    assert [(r.line, r.kind, r.data) for r in rows] == JSONL_ROWS
    assert {r.source for r in rows} == {"faqs.jsonl"}


def test_a_beir_corpus_gives_documents_with_their_ids(parse_sample):
    assert parse_sample("corpus.jsonl") == (
        [
            doc(
                1,
                "corpus.jsonl",
                title="Microstructural development of human newborn white matter",
                body="Alterations of the architecture of cerebral white matter in the "
                "developing human brain can affect cortical development.",
                external_id="4983",
            ),
            doc(
                2,
                "corpus.jsonl",
                title="Induction of myelodysplasia",
                body="Myelodysplastic syndromes are a group of clonal disorders.",
                external_id="5836",
            ),
        ],
        [],
    )


def test_a_markdown_guide_is_one_document_of_plain_text(parse_sample):
    assert parse_sample("guide.md") == (
        [doc(1, "guide.md", title="Getting started with Acme", body=GUIDE_BODY)],
        [],
    )


def test_a_markdown_file_of_questions_gives_faqs_in_its_title_category(parse_sample):
    assert parse_sample("faq.md") == (
        [
            faq(
                3,
                "faq.md",
                question="How do I update my card?",
                answer="Open Billing, then Payment method, and enter the new card.",
                category="Billing",
            ),
            faq(
                7,
                "faq.md",
                question="Can I get a receipt?",
                answer="Yes. Every payment sends one by email:\n\n"
                "to the account owner\nto any billing contact",
                category="Billing",
            ),
        ],
        [],
    )


def test_plain_text_is_titled_by_its_short_first_line(parse_sample):
    assert parse_sample("notes.txt") == (
        [
            doc(
                1,
                "notes.txt",
                title="Release notes 4.2",
                body="Search now understands questions in your own words.\n"
                "Uploads accept CSV, Markdown, HTML and PDF files.",
            )
        ],
        [],
    )


def test_html_keeps_the_article_and_drops_navigation_scripts_and_footer(parse_sample):
    assert parse_sample("article.html") == (
        [
            doc(
                1,
                "article.html",
                title="Resetting your password",
                body="To reset your password, open the sign-in page and choose Forgot "
                "password. We email you a link that works for one hour.\n"
                "If the email does not arrive within ten minutes, check your spam "
                "folder, then ask your administrator to send a new link.\n"
                "Changing it while signed in\n"
                "Open Settings, then Security, and enter your current password "
                "followed by the new one twice.",
            )
        ],
        [],
    )


def test_a_pdf_is_one_document_with_a_form_feed_between_pages(parse_sample):
    rows, errors = parse_sample("manual.pdf")
    assert (rows, errors) == (
        [doc(1, "manual.pdf", title="Acme Router Manual", body=MANUAL_BODY)],
        [],
    )
    assert rows[0].data["body"].split("\f")[2].startswith("Troubleshooting")


def test_a_word_guide_is_one_document_with_its_headings_lists_and_tables(
    parse_sample,
):
    # The title is the Title paragraph; "Troubleshooting" is a heading only by its
    # outline level; the picture and the footer give no text.
    assert parse_sample("guide.docx") == (
        [doc(1, "guide.docx", title="Getting started with Acme", body=WORD_GUIDE_BODY)],
        [],
    )


def test_a_word_file_of_question_headings_gives_faqs_in_its_title_category(
    parse_sample,
):
    # The second question's style is the document's own, based on Heading 2.
    assert parse_sample("faq.docx") == (
        [faq(line, "faq.docx", **data) for line, data in WORD_FAQS],
        [],
    )


def test_a_file_without_an_extension_is_sniffed(parse_sample):
    assert parse_sample("help-export") == (
        [
            faq(
                1,
                "help-export",
                question="What is this file?",
                answer="JSON without a name.",
            )
        ],
        [],
    )


def test_a_zip_is_read_member_by_member_skipping_folders_and_dotfiles(parse_sample):
    rows, errors = parse_sample("bundle.zip")
    assert errors == []
    assert [(r.source, r.line, r.kind) for r in rows] == [
        ("bundle.zip/faqs.csv", 2, "faq"),
        ("bundle.zip/faqs.csv", 3, "faq"),
        ("bundle.zip/docs/guide.md", 1, "document"),
        ("bundle.zip/docs/manual.pdf", 1, "document"),
        ("bundle.zip/docs/faq.docx", 2, "faq"),
        ("bundle.zip/docs/faq.docx", 5, "faq"),
        ("bundle.zip/more.zip/extra.jsonl", 1, "faq"),
        ("bundle.zip/more.zip/extra.jsonl", 2, "document"),
        ("bundle.zip/more.zip/extra.jsonl", 4, "faq"),
    ]
    assert rows[0].data == {"question": "Question 0?", "answer": "Answer 0."}
    assert rows[2].data == {"title": "Getting started with Acme", "body": GUIDE_BODY}
    assert rows[3].data == {"title": "Acme Router Manual", "body": MANUAL_BODY}
    assert [(r.line, r.data) for r in rows[4:6]] == WORD_FAQS
    assert [(r.line, r.kind, r.data) for r in rows[6:]] == JSONL_ROWS


@pytest.mark.django_db
def test_the_import_command_imports_a_zip_of_mixed_content(committed, capsys):
    with committed():
        call_command("import_content", str(SAMPLES / "bundle.zip"))
    assert "9 created, 0 updated, 0 unchanged, 0 skipped" in capsys.readouterr().out
    assert sorted(Faq.objects.values_list("question", flat=True)) == [
        "Can I get a receipt?",
        "Can I import a BEIR corpus?",
        "How do I export my data?",
        "How do I update my card?",
        "Question 0?",
        "Question 1?",
    ]
    assert sorted(Document.objects.values_list("title", flat=True)) == [
        "Acme Router Manual",
        "Export formats",
        "Getting started with Acme",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name",
    sorted(p.name for p in SAMPLES.iterdir() if p.name != "bundle.zip"),
)
def test_every_sample_imports_through_the_command(name, committed, capsys):
    with committed():
        call_command("import_content", str(SAMPLES / name), "--dry-run")
    assert f"would import {name} into default: " in capsys.readouterr().out
