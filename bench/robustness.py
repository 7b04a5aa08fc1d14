"""Benchmark: robustness of the top of the real board (1,670,250 battles, 129 models), next to the default board.

Run: .venv/bin/python bench/robustness.py [--repeat 7]

Times `top_robustness` (fewest removed votes that change #1, and that swap each adjacent pair of the top
10, every answer checked by refits) and `votes_to_change_first_place` alone, as medians of several runs,
beside the default board (`compute_leaderboard` without bootstrap, the snapshot's own cost) measured in
the same process, and prints what they found.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# 129 x 129 systems: BLAS threads only fight over the shared 2-core machine. Set before numpy loads; the
# default board below is timed under the same setting.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ratings.engine.counts import counts_from_pair_counts_json  # noqa: E402
from ratings.engine.leaderboard import compute_leaderboard  # noqa: E402
from ratings.engine.robustness import describe_flip, top_robustness, votes_to_change_first_place  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "chatbot-arena-20240814" / "pair_counts.json"
ANCHOR = ("mixtral-8x7b-instruct-v0.1", 1114.0)


def median_seconds(function, repeat: int):
    """Median wall time of `repeat` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--top-k", type=int, default=10)
    args = parser.parse_args()

    pc = counts_from_pair_counts_json(DATA)
    print(f"data: {pc.n_battles:,} battles, {pc.n_models} models; 2-core machine, single-threaded BLAS")
    compute_leaderboard(pc, bootstrap=False, anchor=ANCHOR)  # warm-up: imports and first-call costs
    board_s, _ = median_seconds(lambda: compute_leaderboard(pc, bootstrap=False, anchor=ANCHOR), 3 * args.repeat)
    first_s, first = median_seconds(lambda: votes_to_change_first_place(pc), args.repeat)
    report_s, report = median_seconds(lambda: top_robustness(pc, top_k=args.top_k), args.repeat)

    print(
        f"baseline: default board (fit + sandwich + ranks + matrices), median of {3 * args.repeat}: {board_s * 1e3:.1f} ms"
    )
    print(f"votes_to_change_first_place, median of {args.repeat}: {first_s * 1e3:.0f} ms ({first.refits} refits)")
    print(
        f"top_robustness (#1 and the {args.top_k - 1} adjacent top-{args.top_k} pairs), median of {args.repeat}:"
        f" {report_s * 1e3:.0f} ms"
    )
    print(f"ratio: top_robustness / default board = {report_s / board_s:.1f}x")
    print()
    print(describe_flip(report.first_place, first_place=True, shown=len(report.first_place.removed)))
    print(
        f"  first-order (influence) estimate {report.first_place.influence_estimate} votes; verified by refit:"
        f" {report.first_place.verified}; the first N - 1 keep #1: {report.first_place.one_fewer_holds}"
    )
    print("adjacent pairs of the top:")
    print(f"  {'votes':>6} {'estimate':>8} {'lead':>5}  {'verified':>8} {'N-1 holds':>9}  pair")
    for flip in report.adjacent:
        if flip is None:
            print("  no removal found")
            continue
        print(
            f"  {flip.votes_removed:>6} {flip.influence_estimate if flip.influence_estimate is not None else '-':>8}"
            f" {flip.margin_elo:>5.1f}  {flip.verified!s:>8} {flip.one_fewer_holds!s:>9}  {flip.leader} > {flip.challenger}"
        )
    all_verified = all(
        flip is not None and flip.verified and flip.one_fewer_holds for flip in [first, *report.adjacent]
    )
    print(f"every answer verified (N flips, N - 1 does not): {all_verified}")
    print(f"fast enough for a snapshot task (our bar: < 5 s): {'MET' if report_s < 5 else 'MISSED'} ({report_s:.2f} s)")


if __name__ == "__main__":
    main()
