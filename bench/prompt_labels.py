"""Benchmark: accuracy and speed of the prompt-label classifiers on the hand-labelled prompts.

Run: .venv/bin/python bench/prompt_labels.py

Accuracy is printed twice: on the prompts the classifiers were tuned against (optimistic) and on a
held-out list written afterwards and never tuned on. The language detector runs in both lingua modes.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ratings import prompt_labels as pl  # noqa: E402
from tests.ratings import prompt_label_examples as examples  # noqa: E402


def asked(text: str) -> list[dict]:
    """A one-prompt conversation."""
    return [{"role": "user", "content": text}]


def score(classify, labelled) -> tuple[float, float, list]:
    """Accuracy, median microseconds per call, and the misclassified prompts."""
    wrong, times = [], []
    for item, expected in labelled:
        conversation = asked(item) if isinstance(item, str) else item
        start = time.perf_counter()
        got = classify(conversation)
        times.append(time.perf_counter() - start)
        if got != expected:
            wrong.append((item if isinstance(item, str) else "(conversation)", expected, got))
    return 1 - len(wrong) / len(labelled), statistics.median(times) * 1e6, wrong


def report(name: str, classify, labelled) -> None:
    """Print one line of accuracy and speed, then the misses."""
    accuracy, micros, wrong = score(classify, labelled)
    print(f"{name:<34} {len(labelled):>3} prompts  accuracy {accuracy:6.1%}  median {micros:8.1f} us/call")
    for text, expected, got in wrong:
        print(f"    missed: {str(text)[:60]!r} expected {expected}, got {got}")


def main() -> None:
    # Low-accuracy mode first: it loads only the trigram models, which high-accuracy mode then reuses.
    for low_accuracy in (True, False):
        mode = "low-accuracy" if low_accuracy else "high-accuracy"
        start = time.perf_counter()
        pl.language_detector(low_accuracy=low_accuracy)
        built = time.perf_counter() - start
        start = time.perf_counter()
        pl.language(asked("Wie funktioniert ein Kühlschrank?"), low_accuracy=low_accuracy)
        first = time.perf_counter() - start
        print(f"lingua {mode}: build {built * 1e3:.0f} ms, first detection (loads models) {first:.2f} s")
    report("multi_turn", pl.multi_turn, examples.MULTI_TURN)
    report("long_query", pl.long_query, examples.LONG_QUERY)
    report("coding (tuned on)", pl.coding, examples.CODING)
    report("coding (held out)", pl.coding, examples.HELD_OUT_CODING)
    report("math (tuned on)", pl.math, examples.MATH)
    report("math (held out)", pl.math, examples.HELD_OUT_MATH)
    for low_accuracy in (False, True):
        mode = "low-acc" if low_accuracy else "high-acc"

        def detect(conversation, low=low_accuracy):
            return pl.language(conversation, low_accuracy=low)

        report(f"language {mode} (tuned on)", detect, examples.LANGUAGE)
        report(f"language {mode} (held out)", detect, examples.HELD_OUT_LANGUAGE)
    long_prompt = asked("Please review this design document. " * 200)
    report("prompt_labels, all five, ~1,400 words", pl.prompt_labels, [(long_prompt, pl.prompt_labels(long_prompt))])
    report("prompt_labels, all five, 'hi'", pl.prompt_labels, [("hi", pl.prompt_labels(asked("hi")))])


if __name__ == "__main__":
    main()
