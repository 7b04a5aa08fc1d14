"""Style counts of an answer (length, Markdown headers, list items, bold spans), as FastChat counts them.

Text in, numbers out; the engine turns the two sides' counts into style features. Fenced code blocks are
left out first, so a `# comment` or `- x` inside code is not mistaken for Markdown.
"""

import re

CODE_BLOCK = re.compile(r"```[^\n]*\n.*?```", re.DOTALL)
HEADER = re.compile(r"^#{1,6}\s", re.MULTILINE)
ORDERED_ITEM = re.compile(r"^\s*\d+\.\s", re.MULTILINE)
UNORDERED_ITEM = re.compile(r"^\s*[-*+]\s", re.MULTILINE)
BOLD = (re.compile(r"\*\*[^*\n]+\*\*"), re.compile(r"__[^_\n]+__"))


def markdown_counts(text: str) -> dict[str, int]:
    text = CODE_BLOCK.sub("", text)
    return {
        "headers": len(HEADER.findall(text)),
        "lists": len(ORDERED_ITEM.findall(text)) + len(UNORDERED_ITEM.findall(text)),
        "bold": sum(len(pattern.findall(text)) for pattern in BOLD),
    }


def answer_style(conversation: list[dict], timings: list[dict]) -> dict[str, int]:
    """One side of a vote: tokens summed over its turns' timings, Markdown over its assistant messages."""
    text = "\n".join(m.get("content") or "" for m in conversation if m.get("role") == "assistant")
    tokens = sum(int((t or {}).get("tokens") or 0) for t in timings)
    # As a model server reported them: a negative or absurd count (-1, past 2^31) is no count the table takes.
    return {"tokens": min(max(tokens, 0), MAX_TOKENS), **markdown_counts(text)}


MAX_TOKENS = 2**31 - 1


def conv_metadata(conversation_a, conversation_b, timings_a, timings_b) -> dict:
    """FastChat's clean_battle `conv_metadata` (the keys its style control reads) for an exported vote."""
    a, b = answer_style(conversation_a, timings_a), answer_style(conversation_b, timings_b)
    return {
        "sum_assistant_a_tokens": a["tokens"],
        "sum_assistant_b_tokens": b["tokens"],
        "header_count_a": {"total": a["headers"]},
        "header_count_b": {"total": b["headers"]},
        "list_count_a": {"total": a["lists"]},
        "list_count_b": {"total": b["lists"]},
        "bold_count_a": {"total": a["bold"]},
        "bold_count_b": {"total": b["bold"]},
    }
