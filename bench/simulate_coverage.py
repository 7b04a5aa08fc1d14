"""Coverage of the 95% intervals on simulated arenas with known ratings.

Run: .venv/bin/python bench/simulate_coverage.py [--arenas 200] [--models 20] [--battles 20000] [--rounds 1000]

Each arena draws true ratings (normal, sd 100), simulates battles with ties (expected score exactly the
Bradley-Terry probability, so ties-as-half-wins is the right model), fits, and checks whether each
model's sandwich and bootstrap intervals contain its true rating (both relative to the mean weighted by
each model's battles, the fit's gauge). Target: 92-98% coverage for both methods.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ratings.engine.bradley_terry import PairData, bootstrap_intervals, fit_ratings, sandwich_intervals  # noqa: E402
from ratings.engine.counts import pair_outcome_counts  # noqa: E402
from ratings.engine.simulate import simulate_battles  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arenas", type=int, default=200)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--battles", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    names = [f"m{i}" for i in range(args.models)]
    covered = {"sandwich": [], "bootstrap": []}
    errors = []
    start = time.perf_counter()
    for arena in tqdm(range(args.arenas), desc="arenas", mininterval=1.0):
        rng = np.random.default_rng(args.seed * 100_003 + arena)
        truth = rng.normal(1000.0, 100.0, args.models)
        truth += 1000.0 - truth.mean()
        model_a, model_b, outcome = simulate_battles(truth, args.battles, seed=args.seed * 100_003 + arena)
        pc = pair_outcome_counts(model_a, model_b, outcome, names)
        # The board's gauge: the truth centred as the fit centres its ratings, on the battle-weighted mean.
        truth += 1000.0 - np.average(truth, weights=PairData.from_counts(pc).rated_groups().played)
        ratings = fit_ratings(pc)
        errors.append(ratings - truth)
        lower, upper = sandwich_intervals(pc, ratings)
        covered["sandwich"].append((lower <= truth) & (truth <= upper))
        lower, upper, _ = bootstrap_intervals(pc, rounds=args.rounds, seed=arena)
        covered["bootstrap"].append((lower <= truth) & (truth <= upper))
    elapsed = time.perf_counter() - start

    n_intervals = args.arenas * args.models
    print(
        f"{args.arenas} arenas x {args.models} models x {args.battles:,} battles, "
        f"{args.rounds} bootstrap rounds, {elapsed:.1f} s"
    )
    print(f"rating error: mean {np.mean(errors):+.3f}, rms {np.sqrt(np.mean(np.square(errors))):.2f} Elo points")
    # Intervals within one arena share its draws, so the arena is the unit for the standard error.
    for method, hits in covered.items():
        per_arena = np.mean(hits, axis=1)
        coverage = per_arena.mean()
        standard_error = per_arena.std(ddof=1) / np.sqrt(args.arenas)
        verdict = "MET" if 0.92 <= coverage <= 0.98 else "MISSED"
        print(
            f"{method:>9} coverage: {coverage:.4f} +/- {standard_error:.4f} over {n_intervals} intervals"
            f" (target 0.92-0.98: {verdict})"
        )


if __name__ == "__main__":
    main()
