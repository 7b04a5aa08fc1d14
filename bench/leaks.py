"""How well the blindness detector (battles/blindness.py) finds identity leaks, against today's check.

On the labelled corpus in tests/battles/data (see its README): recall on leaking answers per category,
false positives on clean answers from the real SmolLM2 and Gemma 3 servers per model, and on hand-written
hard negatives, each with counts and exact (Clopper-Pearson) 95% intervals. Next to each: the baseline, the
exact-match check that battles/services.py:identity_leak_reason does today, copied below. Then recall on
fresh perturbations (the corpus generator with other seeds), the policy
for makers and common words measured both ways, `asks_identity` on the corpus prompts, and the cost of
scanning: whole answers with `find`, and a 2,000-token answer streamed token by token through the scanner
against re-running `find` on the whole text at every token.

Run: .venv/bin/python bench/leaks.py
"""

import json
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from scipy.stats import beta

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from battles.blindness import Identity, LeakDetector, asks_identity, prompt_not_blind  # noqa: E402
from bench.collect_answers import perturbed_leaks  # noqa: E402

DATA_DIR = ROOT / "tests" / "battles" / "data"
STREAM_TOKENS = 2000


def baseline_leaks(identities: list[Identity]):
    """BASELINE, copied from battles/services.py:identity_leak_reason (today's check): each name,
    organization and served id of 4+ characters, lowercased, matched exactly between non-word characters.
    Today it is given the battle's two models; here all registered models, which can only raise its recall."""
    terms = set()
    for identity in identities:
        terms |= {identity.name, identity.organization, identity.served_model_id}
    patterns = [
        re.compile(rf"(?<![\w-]){re.escape(term.lower())}(?![\w-])") for term in terms if len(term.strip()) >= 4
    ]
    return lambda text: any(pattern.search(text.lower()) for pattern in patterns)


def interval(hits: int, total: int) -> tuple[float, float]:
    """Exact (Clopper-Pearson) 95% interval of a binomial proportion."""
    if total == 0:
        return float("nan"), float("nan")
    low = beta.ppf(0.025, hits, total - hits + 1) if hits > 0 else 0.0
    high = beta.ppf(0.975, hits + 1, total - hits) if hits < total else 1.0
    return low, high


def rate_cell(hits: int, total: int) -> str:
    low, high = interval(hits, total)
    return f"{hits:>3}/{total:<3} {hits / total:6.1%} [{low:5.1%}, {high:5.1%}]"


def load_corpus() -> dict:
    perturbed = json.loads((DATA_DIR / "perturbed_leaks.json").read_text())
    real = json.loads((DATA_DIR / "real_answers.json").read_text())["answers"]
    labels = json.loads((DATA_DIR / "real_labels.json").read_text())["labels"]
    leaks = defaultdict(list)
    for leak in perturbed["leaks"]:
        leaks[leak["category"]].append(leak["answer"])
    clean = defaultdict(list)
    other_claims = []
    for answer in real:
        label = labels[answer["id"]]["label"]
        setup = answer["id"].split("/")[0]  # smollm2, gemma3, or smollm2_default (its own system prompt)
        if label == "leak":
            leaks["real_" + setup].append(answer["answer"])
        elif label == "clean":
            clean[setup].append(answer["answer"])
        else:
            other_claims.append(answer["answer"])
    return {
        "registry": [Identity(**model) for model in perturbed["registry"]],
        "leaks": dict(leaks),
        "clean": dict(clean),
        "other_claims": other_claims,
        "hard_negatives": [item["answer"] for item in perturbed["hard_negatives"]],
        "prompts": {(answer["category"], answer["prompt"]) for answer in real},
    }


def print_table(title: str, groups: dict[str, list[str]], checks: dict[str, object]) -> None:
    print(f"\n{title}")
    print(f"  {'':<26}" + "".join(f"{name:<34}" for name in checks))
    totals = {name: [0, 0] for name in checks}
    for group, texts in groups.items():
        row = f"  {group:<26}"
        for name, check in checks.items():
            hits = sum(bool(check(text)) for text in texts)
            totals[name][0] += hits
            totals[name][1] += len(texts)
            row += f"{rate_cell(hits, len(texts)):<34}"
        print(row)
    print(f"  {'ALL':<26}" + "".join(f"{rate_cell(*totals[name]):<34}" for name in checks))


def streamed_tokens(text: str) -> list[str]:
    """The text as a model streams it: words with their leading space, long words in pieces of four."""
    tokens = []
    for word in re.findall(r"\s*\S+|\s+", text):
        tokens += [word[index : index + 4] for index in range(0, len(word), 4)]
    return tokens


def main() -> None:
    corpus = load_corpus()
    registry = corpus["registry"]
    started = time.perf_counter()
    detector = LeakDetector(registry)
    build_ms = (time.perf_counter() - started) * 1000
    baseline = baseline_leaks(registry)
    checks = {"detector": detector.find, "baseline (exact match)": baseline}

    print(f"Registry: {len(registry)} models; detector built in {build_ms:.1f} ms with {len(detector.terms)} terms")
    print("Cells: flagged/total  rate  [exact 95% interval]")
    print_table("RECALL on leaking answers (higher is better)", corpus["leaks"], checks)
    print_table("FALSE POSITIVES on clean answers from the real servers (lower is better)", corpus["clean"], checks)
    print_table(
        "FALSE POSITIVES on hand-written hard negatives (lower is better)", {"hard": corpus["hard_negatives"]}, checks
    )
    print_table(
        "Real answers claiming another registered model or maker (not counted above)",
        {"claims_other_identity": corpus["other_claims"]},
        checks,
    )

    print("\nRECALL on fresh perturbations: the corpus generator run with seeds 1-3 instead of the committed one")
    for seed in (1, 2, 3):
        fresh = [leak["answer"] for leak in perturbed_leaks(seed)]
        print(f"  seed {seed}: {rate_cell(sum(detector.find(text) is not None for text in fresh), len(fresh))}")

    all_leaks = [text for texts in corpus["leaks"].values() for text in texts]
    all_clean = [text for texts in corpus["clean"].values() for text in texts]
    print("\nPOLICY for makers and names that are common words (all leaks / all real clean / hard negatives)")
    policies = {
        "context needed (shipped)": detector,
        "makers anywhere": LeakDetector(registry, makers_need_context=False),
        "makers and common words anywhere": LeakDetector(
            registry, makers_need_context=False, common_words_need_context=False
        ),
    }
    for name, policy in policies.items():
        cells = [
            rate_cell(sum(policy.find(text) is not None for text in texts), len(texts))
            for texts in (all_leaks, all_clean, corpus["hard_negatives"])
        ]
        print(f"  {name:<34}" + "   ".join(cells))

    identity_prompts = sorted(prompt for category, prompt in corpus["prompts"] if category == "identity")
    topic_prompts = sorted(prompt for category, prompt in corpus["prompts"] if category != "identity")
    print("\nASKS_IDENTITY on the corpus prompts")
    print(
        f"  identity prompts recognised      {rate_cell(sum(map(asks_identity, identity_prompts)), len(identity_prompts))}"
    )
    print(f"  topic prompts taken for identity {rate_cell(sum(map(asks_identity, topic_prompts)), len(topic_prompts))}")
    # What a vote's prompt alone costs: asking who, a distinctive name, or a conditional on a name or maker.
    strict = policies["makers and common words anywhere"]
    not_blind = sum(prompt_not_blind(prompt, detector, strict) != "" for prompt in topic_prompts)
    print(
        f"  topic prompts leaving the vote uncounted (asks who, or names a model) {rate_cell(not_blind, len(topic_prompts))}"
    )

    print("\nCOST of scanning")
    texts = all_leaks + all_clean
    timings = []
    for text in texts:
        started = time.perf_counter()
        detector.find(text)
        timings.append((time.perf_counter() - started) * 1e6)
    characters = sum(len(text) for text in texts)
    print(
        f"  find() on {len(texts)} corpus answers: median {statistics.median(timings):.0f} µs, "
        f"p95 {statistics.quantiles(timings, n=20)[-1]:.0f} µs, {sum(timings) / characters * 1000:.0f} µs per 1,000 chars"
    )
    long_clean = " ".join(all_clean)
    tokens = streamed_tokens(long_clean)[:STREAM_TOKENS]
    answer = "".join(tokens)
    repeats = 5
    scanner_runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        scanner = detector.scanner()
        for token in tokens:
            scanner.feed(token)
        scanner.finish()
        scanner_runs.append(time.perf_counter() - started)
    scanner_seconds = min(scanner_runs)
    # The naive way: find() on the whole text so far at every token. Timed on every 50th prefix, each standing
    # for the 50 tokens around it, since timing all 2,000 would take most of a minute.
    step = 50
    rescan_seconds = 0.0
    for end in range(step // 2, len(tokens), step):
        prefix = "".join(tokens[: end + 1])
        started = time.perf_counter()
        detector.find(prefix)
        rescan_seconds += (time.perf_counter() - started) * step
    print(
        f"  streamed {len(tokens)} tokens ({len(answer):,} chars) through the scanner: {scanner_seconds * 1000:.1f} ms "
        f"per answer, {scanner_seconds / len(tokens) * 1e6:.1f} µs per token (best of {repeats})"
    )
    print(
        f"  baseline, find() on the whole text at every token: ~{rescan_seconds * 1000:.0f} ms per answer "
        f"(every 50th prefix timed); ratio {rescan_seconds / scanner_seconds:.0f}x"
    )


if __name__ == "__main__":
    main()
