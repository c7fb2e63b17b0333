import subprocess
import sys

import numpy as np
import pytest

from embeddings.clustering import (
    group_central,
    topics_find,
    topics_keywords,
    vectors_cluster,
)
from embeddings.encoders import get_encoder

PASSWORDS = [
    "How do I reset my password?",
    "I forgot my password, how can I change it?",
    "The password reset email never arrives",
    "Can I recover my account if I lost my password?",
]
REFUNDS = [
    "How do I get a refund for my order?",
    "Can I return an item and get my money back?",
    "How long does a refund take to reach my card?",
    "What is your refund policy for damaged products?",
]
SHIPPING = [
    "How long does shipping take?",
    "Do you ship internationally?",
    "How much does shipping cost to Canada?",
    "Which carrier do you use for shipping parcels?",
]
OUTLIER = "What is the capital of Mongolia?"


def test_it_finds_separate_topics_with_telling_labels_on_the_real_model():
    texts = [*SHIPPING, PASSWORDS[0], *REFUNDS, *PASSWORDS[1:], OUTLIER]
    found = topics_find(texts, get_encoder().encode(texts), threshold=1.4, min_size=2)
    groups = {frozenset(texts[i] for i in topic.members) for topic in found.topics}
    assert groups == {frozenset(PASSWORDS), frozenset(REFUNDS), frozenset(SHIPPING)}
    assert [topic.size for topic in found.topics] == [4, 4, 4]
    assert [texts[i] for i in found.unclustered] == [OUTLIER]
    by_topic = {
        frozenset(texts[i] for i in topic.members): topic.labels
        for topic in found.topics
    }
    assert by_topic[frozenset(PASSWORDS)][0] == "password"
    assert by_topic[frozenset(REFUNDS)][0] == "refund"
    assert by_topic[frozenset(SHIPPING)][0] == "shipping"
    for topic in found.topics:
        assert 1 <= len(topic.labels) <= 4
        assert len(topic.representatives) == 3
        assert set(topic.representatives) <= set(topic.members)
        assert topic.members == sorted(topic.members)


def test_a_lower_threshold_splits_and_a_larger_min_size_leaves_more_unclustered():
    texts = [*PASSWORDS, *REFUNDS[:2], OUTLIER]
    vectors = get_encoder().encode(texts)
    loose = topics_find(texts, vectors, threshold=1.4, min_size=2)
    strict = topics_find(texts, vectors, threshold=1.4, min_size=3)
    assert [t.size for t in loose.topics] == [4, 2]
    assert [t.size for t in strict.topics] == [4]
    assert strict.unclustered == [4, 5, 6]
    tight = topics_find(texts, vectors, threshold=0.01, min_size=1)
    assert [t.size for t in tight.topics] == [1] * len(texts)
    assert tight.unclustered == []


def test_representatives_are_the_members_nearest_the_centre():
    vectors = np.array([[1, 0], [0.8, 0.6], [0.6, 0.8], [0, 1]], dtype=np.float32)
    assert group_central(vectors, [0, 1, 2, 3])[:2] in ([1, 2], [2, 1])
    assert group_central(vectors, [0, 1, 3])[0] == 1


def test_no_text_and_one_text_are_grouped_without_error():
    assert vectors_cluster(np.zeros((0, 4), np.float32), threshold=1.4) == []
    assert vectors_cluster(np.ones((1, 4), np.float32), threshold=1.4) == [[0]]
    one = topics_find(
        ["hello"], get_encoder().encode(["hello"]), threshold=1.4, min_size=2
    )
    assert one.topics == [] and one.unclustered == [0]


def test_texts_and_vectors_must_match():
    with pytest.raises(ValueError, match="2 texts but 1 vectors"):
        topics_find(["a", "b"], np.ones((1, 4), np.float32), threshold=1, min_size=1)


def test_keywords_are_words_shared_in_the_topic_and_rare_elsewhere():
    texts = [
        "refund my order please",
        "the refund for my order",
        "late refund",
        "order tracking",
        "track my order",
    ]
    labels = topics_keywords(texts, [[0, 1, 2], [3, 4]], terms=2)
    assert labels == [["refund", "order"], ["order", "track"]]


def test_keywords_of_stop_words_and_numbers_alone_are_empty():
    assert topics_keywords(["it is 42", "what is it"], [[0, 1]]) == [[]]


def test_the_site_starts_without_importing_scikit_learn():
    code = (
        "import django, sys; django.setup(); import searchsite.urls;"
        "print('sklearn' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False"
