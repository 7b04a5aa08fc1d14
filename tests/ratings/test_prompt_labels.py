"""Prompt labels: classifiers on hand-labelled prompts, the labels key, prompt hashing and down-sampling."""

import pytest

from ratings import prompt_labels as pl
from tests.ratings import prompt_label_examples as examples


def asked(text: str) -> list[dict]:
    """A one-prompt conversation."""
    return [{"role": "user", "content": text}]


def accuracy(classify, labelled) -> float:
    """Share of (prompt, expected) pairs the classifier gets right."""
    return sum(classify(asked(text)) == expected for text, expected in labelled) / len(labelled)


def test_coding_classifier_is_accurate_on_labelled_prompts_and_hard_negatives():
    assert accuracy(pl.coding, examples.CODING) >= 0.95
    assert accuracy(pl.coding, examples.HELD_OUT_CODING) >= 0.75
    assert not pl.coding(asked("What is the dress code for a black-tie wedding?"))
    assert pl.coding(asked("```\nls -la\n```"))


def test_math_classifier_is_accurate_on_labelled_prompts_and_hard_negatives():
    assert accuracy(pl.math, examples.MATH) >= 0.95
    assert accuracy(pl.math, examples.HELD_OUT_MATH) >= 0.75
    assert not pl.math(asked("What's new in Python 3.12?"))
    assert pl.math(asked("What is 17 * 23?"))


def test_language_detector_names_the_language_of_short_and_long_prompts():
    assert accuracy(pl.language, examples.LANGUAGE) >= 0.95
    assert accuracy(pl.language, examples.HELD_OUT_LANGUAGE) >= 0.9
    # The commonest arena prompts are bare greetings; lingua alone calls these Vietnamese and Italian.
    assert pl.language(asked("hi")) == "en" and pl.language(asked("hello")) == "en"
    assert pl.language(asked("```python\nprint(1)\n```\n¿Por qué no imprime nada?")) == "es"


def test_prompts_without_words_have_an_undetermined_language():
    for text in ("", "12345", "🙂🙂", "=== ---"):
        assert pl.language(asked(text)) == pl.UNDETERMINED


def test_multi_turn_counts_user_messages_only():
    for conversation, expected in examples.MULTI_TURN:
        assert pl.multi_turn(conversation) is expected


def test_long_query_adds_up_the_user_prompts_and_ignores_answers():
    for conversation, expected in examples.LONG_QUERY:
        assert pl.long_query(conversation) is expected, conversation[0]["content"][:40]


def test_estimated_tokens_count_words_by_length_and_cjk_characters_one_each():
    assert pl.estimated_tokens("the quick brown fox") == 4
    assert pl.estimated_tokens("internationalization") == 5
    assert pl.estimated_tokens("春天来了") == 4
    assert pl.estimated_tokens("x = 1;") == 4


def test_all_labels_of_a_conversation_come_back_together():
    conversation = [
        {"role": "user", "content": "Write a Python function that solves 2x + 3 = 11"},
        {"role": "assistant", "content": "def solve(): ..."},
        {"role": "user", "content": "now explain it"},
    ]
    labels = pl.prompt_labels(conversation)
    assert labels == pl.PromptLabels("en", multi_turn=True, long_query=False, coding=True, math=True)
    assert pl.labels_key(labels) == "en:tcm"


def test_labels_key_round_trips_every_flag_combination():
    keys = set()
    for mask in range(16):
        flags = {name: bool(mask >> bit & 1) for bit, name in enumerate(pl.FLAGS)}
        labels = pl.PromptLabels("zh", **flags)
        key = pl.labels_key(labels)
        assert pl.parse_labels_key(key) == labels
        keys.add(key)
    assert len(keys) == 16 and "zh:" in keys and "zh:tlcm" in keys


@pytest.mark.parametrize("key", ["en", "en:x", "en:mc", "en:cc", "EN:c", "english:c", ":c", "en:c "])
def test_labels_key_parser_rejects_non_canonical_keys(key):
    with pytest.raises(ValueError):
        pl.parse_labels_key(key)


def test_prompt_hash_ignores_case_punctuation_and_spacing_but_not_words_or_follow_ups():
    hi = pl.prompt_hash(asked("hi"))
    assert pl.prompt_hash(asked("  Hi!!! ")) == hi
    assert pl.prompt_hash(asked("HI.")) == hi
    assert pl.prompt_hash(asked("hi there")) != hi
    follow_up = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "x"},
    ]
    assert pl.prompt_hash(follow_up) != hi
    assert len(hi) == 64 and int(hi, 16) >= 0
    assert pl.normalised_prompt("Ｈｅｌｌｏ,\tWORLD…") == "hello world"


def test_high_frequency_threshold_is_the_top_tenth_of_a_percent_with_a_floor():
    counts = list(range(1, 10_001))  # 10,000 distinct prompts seen 1..10,000 times
    assert pl.high_frequency_threshold(counts) == 9990
    assert pl.high_frequency_threshold([1, 1, 2, 3]) == 10
    assert pl.high_frequency_threshold([]) == 10


def test_down_sampling_keeps_every_vote_up_to_the_threshold_then_ever_fewer():
    threshold = 100
    kept = [n for n in range(1, 100_001) if pl.keep_prompt_vote(n, threshold)]
    assert kept[:threshold] == list(range(1, threshold + 1))
    assert sum(1 for n in kept if 100 < n <= 200) == 50  # every 2nd
    assert sum(1 for n in kept if 200 < n <= 400) == 50  # every 4th
    # n = 100,000 votes keep about threshold * (1 + log2(n / threshold) / 2) ~ 600, and still some late ones.
    assert 550 <= len(kept) <= 650
    assert any(n > 90_000 for n in kept)
    assert [pl.keep_prompt_vote(n, threshold) for n in range(1, 5000)] == [
        pl.keep_prompt_vote(n, threshold) for n in range(1, 5000)
    ]


def test_down_sampling_rejects_counts_that_do_not_start_at_one():
    with pytest.raises(ValueError):
        pl.keep_prompt_vote(0, 10)
    with pytest.raises(ValueError):
        pl.keep_prompt_vote(5, 0)
