"""Fitting a conversation into a model's context window before the request, never as a failure after it.

Token counts are estimated without the model's tokenizer (remote APIs don't expose one), on the safe side:
a UTF-8 byte count over three, which overestimates English (about four characters a token) and covers
scripts of several bytes a character, plus a few tokens per message for the chat format's markers.
"""

from __future__ import annotations

from dataclasses import dataclass

BYTES_PER_TOKEN = 3.0
TOKENS_PER_MESSAGE = 8  # role markers, separators and a BOS, in every chat format we know
# Never squeeze the answer below this many tokens to make a long conversation fit: drop turns instead.
MIN_ANSWER_TOKENS = 64


def estimate_tokens(messages: list[dict]) -> int:
    return sum(
        TOKENS_PER_MESSAGE + int(len((m.get("content") or "").encode()) / BYTES_PER_TOKEN + 0.999) for m in messages
    )


@dataclass(frozen=True)
class Fitted:
    messages: list[dict]
    max_tokens: int
    dropped_turns: int  # oldest user/assistant exchanges left out


class ContextTooSmall(ValueError):
    """Even the newest prompt alone does not fit the model's context."""


def fit_to_context(messages: list[dict], *, context_length: int, max_new_tokens: int, min_dropped: int = 0) -> Fitted:
    """The messages with the oldest exchanges dropped until the prompt and the answer fit the context, and at
    least `min_dropped` of them (as many as there are before the newest prompt, at most): both sides of a
    battle answer the same conversation, whichever of them needed it shorter.

    The system message and the newest user prompt are always kept. The answer keeps its full budget when
    the conversation allows, and never less than MIN_ANSWER_TOKENS.
    """
    system = [m for m in messages[:1] if m.get("role") == "system"]
    turns = messages[len(system) :]
    answer_floor = min(max_new_tokens, MIN_ANSWER_TOKENS)
    dropped = 0
    while True:
        kept = system + turns
        room = context_length - estimate_tokens(kept)
        fits = room >= max_new_tokens or (room >= answer_floor and len(turns) <= 1)
        if fits and (dropped >= min_dropped or len(turns) <= 1):
            return Fitted(kept, min(max_new_tokens, room), dropped)
        if len(turns) <= 1:
            raise ContextTooSmall(
                f"the prompt needs about {estimate_tokens(kept)} tokens of a {context_length}-token context"
            )
        # Drop the oldest exchange: a user prompt and the answer that followed it.
        cut = 2 if len(turns) > 2 and turns[1].get("role") == "assistant" else 1
        turns = turns[cut:]
        dropped += 1


def prompt_fits(prompt: str, *, system_prompt: str, context_length: int, max_new_tokens: int) -> bool:
    """Whether this prompt, alone after the system prompt, leaves room for an answer."""
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        {"role": "user", "content": prompt}
    ]
    return context_length - estimate_tokens(messages) >= min(max_new_tokens, MIN_ANSWER_TOKENS)
