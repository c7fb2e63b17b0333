"""Chunking a batch of sources (one batched tokenizer call) gives exactly the chunks
that chunking each source alone gives."""

from embeddings.models import Chunk
from embeddings.services import source_chunks, sources_sync
from faq.models import Document, Faq

LONG = " ".join(f"Finding {i} holds for cohort {i % 7}." for i in range(300))


def test_a_batch_is_chunked_as_each_source_alone(collection):
    documents = Document.objects.bulk_create(
        [
            Document(collection=collection, title="Long study", body=LONG),
            Document(collection=collection, title="  Padded  ", body="  Short.  "),
            Document(collection=collection, title="Same text", body=LONG),
            Document(collection=collection, title="", body="No title at all."),
            Document(collection=collection, title="PDF", body="Page one.\fPage two."),
            Document(collection=collection, title="Hidden", body=LONG, published=False),
        ]
    )
    sources_sync(documents)
    stored = list(
        Chunk.objects.order_by("source_id", "field", "position").values_list(
            "source_id", "field", "position", "text"
        )
    )
    alone = sorted(
        (document.pk, field, position, text)
        for document in documents
        if document.published
        for position, (field, text) in enumerate(source_chunks(document))
    )
    assert stored == alone
    assert len(stored) > len(documents)  # the long bodies became several windows


def test_faqs_chunk_the_question_alone_and_the_answer_led_by_it(collection):
    faqs = Faq.objects.bulk_create(
        [Faq(collection=collection, question="How long?", answer=LONG)]
    )
    sources_sync(faqs)
    stored = list(
        Chunk.objects.order_by("field", "position").values_list(
            "field", "position", "text"
        )
    )
    alone = [
        (field, position, text)
        for position, (field, text) in enumerate(source_chunks(faqs[0]))
    ]
    assert stored == sorted(alone)
    assert stored[-1] == ("question", 0, "How long?")
