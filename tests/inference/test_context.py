"""Fitting a conversation into a model's context window, before the request."""

import pytest

from inference.context import ContextTooSmall, estimate_tokens, fit_to_context, prompt_fits

SYSTEM = {"role": "system", "content": "Be helpful."}


def exchange(i: int, words: int = 100) -> list[dict]:
    text = f"turn {i} " + "word " * words
    return [{"role": "user", "content": text}, {"role": "assistant", "content": text}]


def test_the_estimate_is_on_the_safe_side_for_english_and_for_scripts_of_several_bytes():
    english = "The quick brown fox jumps over the lazy dog. " * 20  # about 200 real tokens
    assert estimate_tokens([{"role": "user", "content": english}]) >= 250
    chinese = "快速的棕色狐狸跳过了懒狗。" * 20  # about one token a character, three bytes each
    assert estimate_tokens([{"role": "user", "content": chinese}]) >= len(chinese)


def test_a_short_conversation_is_sent_whole():
    messages = [SYSTEM, *exchange(0), {"role": "user", "content": "And?"}]
    fitted = fit_to_context(messages, context_length=2048, max_new_tokens=256)
    assert fitted.messages == messages and fitted.dropped_turns == 0 and fitted.max_tokens == 256


def test_the_oldest_exchanges_are_dropped_until_the_answer_fits_keeping_system_and_newest_prompt():
    messages = [SYSTEM, *exchange(0, 400), *exchange(1, 400), *exchange(2, 400), {"role": "user", "content": "Last?"}]
    fitted = fit_to_context(messages, context_length=2048, max_new_tokens=256)
    assert fitted.messages[0] == SYSTEM and fitted.messages[-1]["content"] == "Last?"
    assert fitted.dropped_turns >= 1 and fitted.messages[1]["role"] == "user"
    assert estimate_tokens(fitted.messages) + fitted.max_tokens <= 2048 and fitted.max_tokens == 256


def test_a_prompt_that_cannot_fit_alone_is_refused():
    with pytest.raises(ContextTooSmall):
        fit_to_context([{"role": "user", "content": "word " * 3000}], context_length=2048, max_new_tokens=256)
    assert not prompt_fits("word " * 3000, system_prompt="", context_length=2048, max_new_tokens=256)
    assert prompt_fits("Hello?", system_prompt="Be brief.", context_length=2048, max_new_tokens=256)


def test_a_roomy_context_drops_as_many_exchanges_as_asked_and_never_the_newest_prompt():
    """A battle's two sides answer the same conversation: the side with room drops what the other had to."""
    messages = [SYSTEM, *exchange(0), *exchange(1), {"role": "user", "content": "Last?"}]
    assert fit_to_context(messages, context_length=32768, max_new_tokens=256).dropped_turns == 0
    fitted = fit_to_context(messages, context_length=32768, max_new_tokens=256, min_dropped=1)
    assert fitted.dropped_turns == 1 and fitted.messages == [SYSTEM, *exchange(1), {"role": "user", "content": "Last?"}]
    everything = fit_to_context(messages, context_length=32768, max_new_tokens=256, min_dropped=5)
    assert everything.dropped_turns == 2 and everything.messages == [SYSTEM, {"role": "user", "content": "Last?"}]
