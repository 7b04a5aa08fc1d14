"""Benchmark: all category boards with their bootstraps against the overall board alone, on the real battles.

Run: .venv/bin/python bench/categories.py [--repeat 5] [--baseline-rounds 20]

The shared data has no prompt text, so each of the 1,670,250 real battles gets synthetic labels with a
fixed seed, drawn independently per battle at round rates in the range the public arena reports:
multi-turn 15%, longer query 20%, coding 20%, math 8%; language English 70%, Chinese 8%, Russian 5%,
German 3%, Japanese, French and Spanish 2.5% each, Korean, Portuguese 1.5% each, Italian and Polish 1%
each, undetermined 1.5%. That gives 17 boards at the default 1,000-battle minimum. Random thinning keeps
each category's ratings near the overall ones, which is fine for timing and for checking the bootstrap.
"""

from __future__ import annotations

import os

# Single-threaded BLAS for both sides of every ratio: the engine already runs bootstrap chunks on threads,
# and a multi-threaded BLAS on 129 x 129 matrices only oversubscribes a small or shared machine (here a
# linear solve went from ~1 ms to 10-70 ms under load). Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ratings import ANCHOR, DATA, Baseline  # noqa: E402
from ratings.engine import bradley_terry as bt  # noqa: E402
from ratings.engine.categories import LabelledPairCounts, category_boards, category_counts  # noqa: E402
from ratings.engine.counts import counts_from_pair_counts_json  # noqa: E402
from ratings.engine.leaderboard import compute_leaderboard  # noqa: E402
from ratings.prompt_labels import FLAGS, PromptLabels, labels_key  # noqa: E402

FLAG_RATES = {"multi_turn": 0.15, "long_query": 0.20, "coding": 0.20, "math": 0.08}
LANGUAGE_RATES = {
    "en": 0.70,
    "zh": 0.08,
    "ru": 0.05,
    "de": 0.03,
    "ja": 0.025,
    "fr": 0.025,
    "es": 0.025,
    "ko": 0.015,
    "pt": 0.015,
    "it": 0.01,
    "pl": 0.01,
    "und": 0.015,
}
LABEL_SEED = 20240814


def synthetic_labelled_counts(pc, seed: int = LABEL_SEED) -> LabelledPairCounts:
    """The real battles with synthetic labels drawn per battle at FLAG_RATES and LANGUAGE_RATES."""
    rng = np.random.default_rng(seed)
    # One entry per battle: its ordered-pair row and outcome, then labels drawn for each battle.
    cell = np.repeat(np.arange(pc.counts.size), pc.counts.ravel())
    row, outcome = cell // 4, cell % 4
    flags = np.zeros(cell.size, dtype=np.int64)
    for bit, flag in enumerate(FLAGS):
        flags |= (rng.random(cell.size) < FLAG_RATES[flag]).astype(np.int64) << bit
    codes = list(LANGUAGE_RATES)
    language = rng.choice(len(codes), size=cell.size, p=list(LANGUAGE_RATES.values()))
    signature = flags * len(codes) + language
    n_signatures = 16 * len(codes)
    key_of_signature = [
        labels_key(
            PromptLabels(codes[s % len(codes)], **{f: bool((s // len(codes)) >> b & 1) for b, f in enumerate(FLAGS)})
        )
        for s in range(n_signatures)
    ]
    fine, inverse = np.unique(row * n_signatures + signature, return_inverse=True)
    counts = np.bincount(inverse * 4 + outcome, minlength=fine.size * 4).reshape(-1, 4)
    fine_row, fine_signature = fine // n_signatures, fine % n_signatures
    keys = [key_of_signature[s] for s in fine_signature.tolist()]
    return LabelledPairCounts(pc.models, pc.pairs[fine_row], keys, counts)


def median_time(function, repeat: int) -> tuple[float, object]:
    """Median wall time of `repeat` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def endpoint_gap(boards_a: dict, boards_b: dict, min_votes: int) -> float:
    """Largest |interval endpoint difference| over all boards, for models with >= min_votes in a board."""
    well = 0.0
    for name, board in boards_a.items():
        other = {row["name"]: row for row in boards_b[name]["models"]}
        for row in board["models"]:
            if row["ci_lower"] is None or other[row["name"]]["ci_lower"] is None:
                continue
            gap = max(
                abs(row["ci_lower"] - other[row["name"]]["ci_lower"]),
                abs(row["ci_upper"] - other[row["name"]]["ci_upper"]),
            )
            if row["votes"] >= min_votes:
                well = max(well, gap)
    return well


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline-rounds", type=int, default=20)
    parser.add_argument("--accuracy-rounds", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    pc = counts_from_pair_counts_json(DATA)
    lpc = synthetic_labelled_counts(pc)
    counts = category_counts(lpc)
    print(f"data: {pc.n_battles:,} battles, {pc.n_models} models; {len(lpc.keys):,} fine cells (pair x labels key)")
    print("boards: " + ", ".join(f"{name} {c.n_battles:,}" for name, c in counts.items()))
    compute_leaderboard(pc, bootstrap=False, anchor=ANCHOR)  # warm-up

    default_s, _ = median_time(lambda: compute_leaderboard(pc, bootstrap=False, anchor=ANCHOR), 20)
    print(f"overall default board (no bootstrap), median of 20: {default_s * 1e3:.1f} ms")
    all_default_s, _ = median_time(lambda: category_boards(lpc, rounds=0, anchor=ANCHOR), args.repeat)
    print(f"all {len(counts)} category boards, no bootstrap, median of {args.repeat}: {all_default_s * 1e3:.0f} ms")
    # The three bootstrap runs take turns, so drifting load on a shared machine hits them alike.
    runs = {
        "overall": lambda: compute_leaderboard(pc, rounds=args.rounds, seed=args.seed, anchor=ANCHOR),
        "split": lambda: category_boards(lpc, rounds=args.rounds, seed=args.seed, anchor=ANCHOR),
        "joint": lambda: category_boards(lpc, rounds=args.rounds, seed=args.seed, anchor=ANCHOR, joint=True),
    }
    times = {name: [] for name in runs}
    results = {}
    for _ in range(args.repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            results[name] = run()
            times[name].append(time.perf_counter() - start)
    overall_s, shared_s, joint_s = (statistics.median(times[name]) for name in runs)
    shared = results["split"]
    print(f"overall board with {args.rounds}-round bootstrap, median of {args.repeat}: {overall_s:.2f} s")
    print(
        f"all {len(counts)} boards with {args.rounds}-round bootstraps (joint=False, default), median of"
        f" {args.repeat}: {shared_s:.2f} s"
    )
    print(
        f"all {len(counts)} boards with {args.rounds}-round bootstraps (joint=True, every fine cell drawn), median"
        f" of {args.repeat}: {joint_s:.2f} s"
    )
    for label, seconds in (("joint=False", shared_s), ("joint=True", joint_s)):
        ratio = seconds / overall_s
        print(
            f"ratio: all boards ({label}) / overall board = {ratio:.2f}x (target <= 2x: {'MET' if ratio <= 2 else 'MISSED'})"
        )

    # Accuracy of the few-step refits: the same weights refitted to convergence (fewer rounds: slow).
    rounds = args.accuracy_rounds
    converged_s, converged = median_time(
        lambda: category_boards(lpc, rounds=rounds, seed=args.seed, anchor=ANCHOR, refit_steps=None), 1
    )
    print(f"all boards, {rounds} rounds refitted to convergence (refit_steps=None): {converged_s:.2f} s")
    for steps in (2, 1):
        result = category_boards(lpc, rounds=rounds, seed=args.seed, anchor=ANCHOR, refit_steps=steps)
        gaps = [endpoint_gap(result, converged, votes) for votes in (20_000, 5000, 1000)]
        print(
            f"{steps} chord step(s) vs converged refits on the same weights, max endpoint gap: {gaps[0]:.3f} Elo"
            f" (models with 20,000+ votes in the board), {gaps[1]:.3f} (5,000+), {gaps[2]:.3f} (1,000+)"
        )
    # Against independent multinomial bootstraps of each board: differences are Monte Carlo noise plus
    # any bias, so they are shown as a share of the interval's half-width (two independent 1000-round
    # percentile bootstraps differ by ~6% of a half-width at each end, one standard deviation).
    relative = {1000: [], 5000: []}
    for name, category_pc in counts.items():
        anchor = None if shared[name]["anchor"] is None else ANCHOR
        lower, upper, _ = bt.bootstrap_intervals(category_pc, rounds=args.rounds, seed=args.seed + 1, anchor=anchor)
        for row in shared[name]["models"]:
            i = category_pc.models.index(row["name"])
            half_width = (upper[i] - lower[i]) / 2
            if half_width <= 0:
                continue  # the anchor: zero-width in both
            gap = max(abs(row["ci_lower"] - lower[i]), abs(row["ci_upper"] - upper[i])) / half_width
            for votes in relative:
                if row["votes"] >= votes:
                    relative[votes].append(gap)
    for votes, gaps in relative.items():
        print(
            f"shared bootstrap vs independent bootstrap_intervals, models with {votes:,}+ votes in a board"
            f" ({len(gaps)} rows): endpoint gap / half-width median {np.median(gaps):.3f}, 95th percentile"
            f" {np.quantile(gaps, 0.95):.3f}, max {max(gaps):.3f}"
        )

    baseline = Baseline(pc)
    start = time.perf_counter()
    baseline.bootstrap(args.baseline_rounds, args.seed)  # its tqdm bar goes to stderr
    per_round = (time.perf_counter() - start) / args.baseline_rounds
    print(
        f"baseline (FastChat-style L-BFGS per round, overall board only): {per_round * 1e3:.0f} ms per round,"
        f" {per_round * args.rounds:.1f} s for {args.rounds} rounds ({args.baseline_rounds} rounds timed)"
    )
    print(f"ratio: baseline overall bootstrap / ours all boards = {per_round * args.rounds / shared_s:.1f}x")


if __name__ == "__main__":
    main()
