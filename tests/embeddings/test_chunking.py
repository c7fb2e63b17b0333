from embeddings.chunking import chunk_text
from embeddings.encoders import get_encoder

WORDS = " ".join(f"word{i} is part of sentence number {i}." for i in range(200))


def test_short_text_is_one_chunk_led_by_its_prefix():
    assert chunk_text(
        "Reset your password.", encoder=get_encoder(), prefix="Login"
    ) == ["Login Reset your password."]


def test_empty_text_keeps_the_prefix_alone():
    assert chunk_text("  ", encoder=get_encoder(), prefix="Only a title") == [
        "Only a title"
    ]
    assert chunk_text("", encoder=get_encoder()) == []


def test_long_text_becomes_windows_that_fit_the_model():
    encoder = get_encoder()
    chunks = chunk_text(WORDS, encoder=encoder, prefix="A title", overlap=32)
    assert len(chunks) > 3
    assert all(encoder.count_tokens(c) <= encoder.content_tokens for c in chunks)
    assert all(c.startswith("A title ") for c in chunks)
    # Nothing is lost: the tail of the text is in the last chunk.
    assert chunks[-1].endswith("sentence number 199.")


def test_windows_overlap_and_cut_between_words():
    encoder = get_encoder()
    chunks = chunk_text(WORDS, encoder=encoder, overlap=32)
    for first, second in zip(chunks, chunks[1:], strict=False):
        tail = first.split()[-5:]
        assert " ".join(tail) in second  # overlap carries the end of one into the next
    words = set(WORDS.split())
    assert all(set(c.split()) <= words for c in chunks)  # no word cut in half


def test_first_chunk_is_what_the_model_would_read_of_the_whole_text():
    encoder = get_encoder()
    first = chunk_text(WORDS, encoder=encoder, prefix="Title")[0]
    whole = encoder.token_spans("Title " + WORDS)
    truncated = ("Title " + WORDS)[: whole[encoder.content_tokens - 1][1]]
    assert truncated.startswith(first)
    assert len(truncated) - len(first) < 12  # at most the one word cut at the edge
