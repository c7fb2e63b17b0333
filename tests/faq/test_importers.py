import json
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from embeddings.models import Chunk
from faq.models import Document, Faq

pytestmark = pytest.mark.django_db


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n"
    )
    return path


def test_our_jsonl_and_beir_corpus_rows_are_imported(tmp_path, committed):
    path = write_jsonl(
        tmp_path / "content.jsonl",
        [
            {
                "kind": "faq",
                "question": "How do I log in?",
                "answer": "With your email.",
                "category": "Account",
            },
            {"question": "Is it free?", "answer": "For small teams.", "id": 7},
            {
                "kind": "document",
                "title": "Guide",
                "body": "Read me.",
                "url": "https://example.com/g",
            },
            {
                "_id": "4983",
                "title": "Brain imaging",
                "text": "Diffusion tensor MRI of newborns.",
            },
        ],
    )
    with committed():
        call_command("import_content", str(path), "--collection", "kb")
    assert list(Faq.objects.values_list("question", "category", "external_id")) == [
        ("How do I log in?", "Account", ""),
        ("Is it free?", "", "7"),
    ]
    assert list(
        Document.objects.values_list("title", "body", "external_id", "url")
    ) == [
        ("Guide", "Read me.", "", "https://example.com/g"),
        ("Brain imaging", "Diffusion tensor MRI of newborns.", "4983", ""),
    ]
    assert set(Chunk.objects.values_list("status", flat=True)) == {"embedded"}


def test_reimporting_updates_instead_of_duplicating(tmp_path, committed, capsys):
    rows = [
        {"_id": "1", "title": "A", "text": "First."},
        {"question": "Q?", "answer": "A."},
    ]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    with committed():
        call_command("import_content", str(path), "--collection", "kb")
    chunk_ids = set(Chunk.objects.values_list("pk", flat=True))
    with committed():
        call_command("import_content", str(path), "--collection", "kb")
    assert "0 created, 0 updated, 2 unchanged" in capsys.readouterr().out
    assert set(Chunk.objects.values_list("pk", flat=True)) == chunk_ids
    rows[0]["text"] = "Changed."
    with committed():
        call_command(
            "import_content", str(write_jsonl(path, rows)), "--collection", "kb"
        )
    assert "0 created, 1 updated, 1 unchanged" in capsys.readouterr().out
    assert Document.objects.get().body == "Changed."
    assert Faq.objects.count() == 1


def test_a_file_with_bad_rows_is_refused_whole_with_each_line_named(tmp_path, capsys):
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {"question": "Fine?", "answer": "Yes."},
            "{not json",
            {"question": "No answer?"},
            '["a", "list"]',
            {"kind": "video", "title": "x"},
            {"title": "Doc", "body": "x", "url": "javascript:alert(1)"},
            {"question": "Fine?", "answer": "Again."},
        ],
    )
    with pytest.raises(CommandError, match="6 invalid rows: nothing was imported"):
        call_command("import_content", str(path))
    assert capsys.readouterr().err.splitlines() == [
        "bad.jsonl: line 2: not valid JSON "
        "(Expecting property name enclosed in double quotes)",
        "bad.jsonl: line 3: a FAQ needs a question and an answer",
        "bad.jsonl: line 4: expected a JSON object",
        "bad.jsonl: line 5: kind must be 'faq' or 'document', not 'video'",
        "bad.jsonl: line 6: url is not a valid URL: 'javascript:alert(1)'",
        "bad.jsonl: line 7: repeats line 1 (question)",
    ]
    assert Faq.objects.count() == Document.objects.count() == 0


def test_skip_invalid_imports_the_good_rows(tmp_path, committed, capsys):
    path = write_jsonl(
        tmp_path / "c.jsonl", [{"question": "Q?", "answer": "A."}, "oops"]
    )
    with committed():
        call_command("import_content", str(path), "--skip-invalid")
    assert "1 created, 0 updated, 0 unchanged, 1 skipped" in capsys.readouterr().out
    assert Faq.objects.count() == 1


def test_dry_run_writes_nothing(tmp_path, capsys):
    path = write_jsonl(tmp_path / "c.jsonl", [{"question": "Q?", "answer": "A."}])
    call_command("import_content", str(path), "--dry-run")
    assert "would import c.jsonl into default: 1 created" in capsys.readouterr().out
    assert Faq.objects.count() == 0 and Chunk.objects.count() == 0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jsonl", None, "cannot open"),
        (
            "sheet.xlsx",
            b"PK\x03\x04",
            "is an Excel workbook; save it as CSV",
        ),
    ],
)
def test_unreadable_files_are_refused_clearly(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("import_content", str(path))


def test_binary_and_hostile_lines_are_row_errors(tmp_path, capsys):
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(
        b"\xff\xfe\x00binary\n"
        + b"[" * 100_000
        + b"\n"
        + b'{"question": '
        + b"9" * 5000
        + b"}\n"
    )
    with pytest.raises(CommandError, match="3 invalid rows"):
        call_command("import_content", str(path))
    errors = capsys.readouterr().err.splitlines()
    assert errors[0] == "hostile.jsonl: line 1: not UTF-8 text"
    assert errors[1].startswith("hostile.jsonl: line 2: not valid JSON")
    assert errors[2].startswith("hostile.jsonl: line 3: ")
