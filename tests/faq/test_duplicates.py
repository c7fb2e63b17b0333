import pytest

from faq.duplicates import duplicate_dismiss, duplicate_merge
from faq.models import DuplicatePair, Faq
from faq.search import SearchQuery, search

pytestmark = pytest.mark.django_db


def test_questions_that_mean_the_same_are_flagged_once(make_faq):
    first = make_faq("How do I reset my password?", "Use the reset link.")
    make_faq("What are your opening hours?", "Nine to five.")
    second = make_faq("How can I reset my password?", "Click 'Forgot password'.")
    make_faq("How can I reset my password?", "A third copy.", published=False)
    pairs = list(DuplicatePair.objects.values_list("first", "second", "status"))
    assert pairs == [(first.pk, second.pk, "open")]
    assert 0.85 <= DuplicatePair.objects.get().similarity <= 1.0


def test_duplicates_within_one_upload_are_flagged(tmp_path, committed):
    from django.core.management import call_command

    path = tmp_path / "faqs.jsonl"
    path.write_text(
        '{"question": "How do I delete my account?", "answer": "Settings."}\n'
        '{"question": "How can I delete my account?", "answer": "Ask support."}\n'
        '{"question": "Do you ship abroad?", "answer": "Yes."}\n'
    )
    with committed():
        call_command("import_content", str(path))
    [pair] = DuplicatePair.objects.all()
    assert {pair.first.question, pair.second.question} == {
        "How do I delete my account?",
        "How can I delete my account?",
    }


def test_merging_unpublishes_the_second_and_dismissing_keeps_both(make_faq, committed):
    first = make_faq("How do I reset my password?", "Use the reset link.")
    second = make_faq("How can I reset my password?", "Click 'Forgot password'.")
    pair = DuplicatePair.objects.get()
    with committed():
        duplicate_merge(pair=pair)
    assert Faq.objects.get(pk=second.pk).published is False
    assert Faq.objects.get(pk=first.pk).published is True
    assert [r.id for r in search(SearchQuery(q="reset password")).results] == [first.pk]
    duplicate_dismiss(pair=pair)
    assert DuplicatePair.objects.get().status == "dismissed"
