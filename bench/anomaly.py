"""Benchmark: votes the anomaly screen needs to flag attackers, and how often it flags honest judges.

Run: .venv/bin/python bench/anomaly.py [--honest 10000] [--attackers 1000] [--diluted 300] [--seed 0]
(about 4 minutes on two cores, most of it the attackers who vote in every battle, followed to 5,000 votes)

Truth: the two-tie Davidson model fitted to the real 1,670,250 battles (129 models; realistic strengths,
tie and both-bad rates); the screen uses the same table as its fit. Battles are drawn uniformly over
ordered pairs, as the arena draws them. Honest judges vote from the fit; attackers:
  side A        always votes for the left answer
  strong/middle target, only when present
                votes only in battles that contain the target (the highest / median rated model) and
                always for it: an attacker who recognises the target skips the other battles, which costs
                nothing and wastes no votes (the realistic case)
  middle target, every battle, random / honest elsewhere
                votes in every battle, for the target when present (2 in 129 battles), else at random
                between left and right, or honestly
  fast clicker  votes within 1-5 s, uniformly at random among the four buttons
Each judge is screened at every checkpoint of the default ladder on its first c votes; votes needed is
the first checkpoint at which it is flagged. Baseline: the likelihood test alone (the paper's idea) at
the same level. alpha = 0.005 per judge over its whole life unless stated: the arena's JUDGE_SCREEN_ALPHA (0.01)
is split between screening each session and each address (--alpha to change it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import binomtest
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ratings.engine import anomaly, ties  # noqa: E402
from ratings.engine import simulate_judges as sim  # noqa: E402
from ratings.engine.bradley_terry import elo_units  # noqa: E402
from ratings.engine.counts import counts_from_pair_counts_json  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "chatbot-arena-20240814" / "pair_counts.json"
ALPHA = 0.005  # JUDGE_SCREEN_ALPHA 0.01, half to the session look and half to the address look
JUDGES_SCREENED_TOGETHER = 10_000
VOTES_PER_HONEST_JUDGE = 50
TASTE_SD_ELO = 50.0


def first_flag(votes, table, checkpoints, **options) -> np.ndarray:
    """Votes each judge (row) needs until flagged: the first checkpoint that flags it (inf: never)."""
    model_a, model_b, outcome, seconds_to_vote, seconds_to_read = votes
    n_judges = model_a.shape[0]
    needed = np.full(n_judges, np.inf)
    for checkpoint in checkpoints:
        judge = np.repeat(np.arange(n_judges), checkpoint)
        screening = anomaly.screen_judges(
            judge,
            model_a[:, :checkpoint].ravel(),
            model_b[:, :checkpoint].ravel(),
            outcome[:, :checkpoint].ravel(),
            table,
            seconds_to_vote=seconds_to_vote[:, :checkpoint].ravel(),
            seconds_to_read=seconds_to_read[:, :checkpoint].ravel(),
            **options,
        )
        newly = screening.flagged & np.isinf(needed)
        needed[newly] = checkpoint
    return needed


def describe_needed(needed: np.ndarray, most: int) -> str:
    """Median and 90th percentile of votes needed, and the share flagged within 50 votes."""

    def quantile(q: float) -> str:
        value = np.quantile(needed, q, method="inverted_cdf")
        return f"{value:.0f}" if np.isfinite(value) else f">{most}"

    return f"{quantile(0.5):>6} {quantile(0.9):>6} {np.mean(needed <= 50):>8.1%}"


def false_flag_line(label: str, flagged: np.ndarray) -> str:
    """Share flagged with its exact (Clopper-Pearson) 95% interval."""
    k, n = int(flagged.sum()), flagged.size
    interval = binomtest(k, n).proportion_ci(0.95, method="exact")
    return f"  {label:<52} {k:>5} / {n:<6} = {k / n:.3%}  (95% CI {interval.low:.3%} - {interval.high:.3%})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--honest", type=int, default=10_000)
    parser.add_argument("--attackers", type=int, default=1000)
    parser.add_argument("--diluted", type=int, default=300, help="attackers per type who vote in every battle")
    parser.add_argument("--long-lived", type=int, default=2000, help="honest judges followed to 500 votes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=ALPHA, help="level of one look, per judge, lifetime")
    args = parser.parse_args()

    pc = counts_from_pair_counts_json(DATA)
    params, *_ = ties.fit_tie_params(pc)
    n_models = pc.n_models
    table = anomaly.outcome_table_from_tie_params(params, n_models)
    by_strength = np.argsort(-params[:n_models])
    strong, middle = int(by_strength[0]), int(by_strength[n_models // 2])
    ladder = np.asarray(anomaly.DEFAULT_CHECKPOINTS)
    rng = np.random.default_rng(args.seed)

    def honest_votes(n_judges: int, n_votes: int, taste_sd: float = 0.0):
        """Honest judges' battles, votes and timing, one row per judge."""
        model_a, model_b = sim.uniform_battles(rng, n_models, (n_judges, n_votes))
        if taste_sd:
            outcome = sim.outcomes_with_taste(rng, params, model_a, model_b, taste_sd)
        else:
            outcome = sim.outcomes_from_table(rng, table, model_a, model_b)
        return (model_a, model_b, outcome, *sim.honest_timing(rng, (n_judges, n_votes)))

    def target_votes(n_judges: int, n_votes: int, target: int, only_present: bool, elsewhere: str):
        """Target attackers' battles, votes and (honest-looking) timing."""
        shape = (n_judges, n_votes)
        if only_present:
            model_a, model_b = sim.target_battles(rng, n_models, target, shape)
        else:
            model_a, model_b = sim.uniform_battles(rng, n_models, shape)
        outcome = sim.target_outcomes(rng, table, model_a, model_b, target, elsewhere)
        return (model_a, model_b, outcome, *sim.honest_timing(rng, shape))

    def side_a_votes(n_judges: int, n_votes: int):
        """Always-left attackers with honest-looking timing."""
        model_a, model_b = sim.uniform_battles(rng, n_models, (n_judges, n_votes))
        return (model_a, model_b, np.zeros_like(model_a), *sim.honest_timing(rng, (n_judges, n_votes)))

    def fast_clicker_votes(n_judges: int, n_votes: int):
        """Random clicks within seconds."""
        model_a, model_b = sim.uniform_battles(rng, n_models, (n_judges, n_votes))
        outcome = rng.integers(0, 4, (n_judges, n_votes))
        return (model_a, model_b, outcome, *sim.fast_clicker_timing(rng, (n_judges, n_votes)))

    attackers = [
        ("side A", 200, lambda: side_a_votes(args.attackers, 200)),
        (
            f"strong target ({pc.models[strong]}), only when present",
            200,
            lambda: target_votes(args.attackers, 200, strong, True, "honest"),
        ),
        (
            f"middle target ({pc.models[middle]}), only when present",
            200,
            lambda: target_votes(args.attackers, 200, middle, True, "honest"),
        ),
        (
            "middle target, every battle, random elsewhere",
            5000,
            lambda: target_votes(args.diluted, 5000, middle, False, "random"),
        ),
        (
            "middle target, every battle, honest elsewhere",
            5000,
            lambda: target_votes(args.diluted, 5000, middle, False, "honest"),
        ),
        ("fast clicker (random buttons, 1-5 s)", 200, lambda: fast_clicker_votes(args.attackers, 200)),
    ]

    start = time.perf_counter()
    attacker_rows = []
    for label, most, make in tqdm(attackers, desc="attackers", mininterval=1.0):
        votes = make()
        checkpoints = ladder[ladder <= most]
        combined = first_flag(votes, table, checkpoints, alpha=args.alpha, models=pc.models)
        baseline = first_flag(votes, table, checkpoints, alpha=args.alpha, tests=(anomaly.LIKELIHOOD,))
        familywise = first_flag(votes, table, checkpoints, alpha=args.alpha / JUDGES_SCREENED_TOGETHER)
        attacker_rows.append((label, votes[0].shape[0], most, combined, baseline, familywise))

    honest_checkpoints = ladder[ladder <= VOTES_PER_HONEST_JUDGE]
    honest = honest_votes(args.honest, VOTES_PER_HONEST_JUDGE)
    honest_flagged = np.isfinite(first_flag(honest, table, honest_checkpoints, alpha=args.alpha))
    honest_baseline = np.isfinite(
        first_flag(honest, table, honest_checkpoints, alpha=args.alpha, tests=(anomaly.LIKELIHOOD,))
    )
    taste = honest_votes(args.honest, VOTES_PER_HONEST_JUDGE, TASTE_SD_ELO * elo_units())
    taste_flagged = np.isfinite(first_flag(taste, table, honest_checkpoints, alpha=args.alpha))
    long_lived = honest_votes(args.long_lived, 500)
    long_flagged = np.isfinite(first_flag(long_lived, table, ladder[ladder <= 500], alpha=args.alpha))

    # One screening call over 10,000 judges x 50 votes, all four tests: the periodic task's unit of work.
    model_a, model_b, outcome, seconds_to_vote, seconds_to_read = honest_votes(10_000, 50)
    judge = np.repeat(np.arange(10_000), 50)
    timings = []
    for _ in range(3):
        tic = time.perf_counter()
        anomaly.screen_judges(
            judge,
            model_a.ravel(),
            model_b.ravel(),
            outcome.ravel(),
            table,
            seconds_to_vote=seconds_to_vote.ravel(),
            seconds_to_read=seconds_to_read.ravel(),
        )
        timings.append(time.perf_counter() - tic)
    elapsed = time.perf_counter() - start

    print(f"Truth and fit: Davidson model of {pc.n_battles:,} real battles, {n_models} models; seed {args.seed}")
    print(f"Checkpoints: {', '.join(str(c) for c in ladder[ladder <= 5000])}; alpha = {args.alpha} per judge, lifetime")
    print()
    print("Votes needed until flagged (median, 90th percentile) and share flagged within 50 votes")
    print(
        f"  {'attacker':<58} {'judges':>6} | {'combination':^23} | {'baseline: likelihood':^23} "
        f"| {'alpha / 10,000 judges':^23}"
    )
    header = f"{'median':>6} {'p90':>6} {'<= 50':>8}"
    print(f"  {'':<58} {'':>6} | {header} | {header} | {header}")
    for label, n_judges, most, combined, baseline, familywise in attacker_rows:
        print(
            f"  {label:<58} {n_judges:>6} | {describe_needed(combined, most)} | {describe_needed(baseline, most)} "
            f"| {describe_needed(familywise, most)}"
        )
    headline = [row for row in attacker_rows if row[2] <= 200]
    combined_share = np.mean(np.concatenate([row[3] for row in headline]) <= 50)
    baseline_share = np.mean(np.concatenate([row[4] for row in headline]) <= 50)
    print(
        f"  side A, both targets only when present and fast clickers together: {combined_share:.1%} flagged within "
        f"50 votes vs {baseline_share:.1%} by the baseline ({combined_share / max(baseline_share, 1e-12):.1f}x)"
    )
    print()
    print(f"Honest judges flagged at any checkpoint up to {VOTES_PER_HONEST_JUDGE} votes (target <= 1%)")
    print(false_flag_line("combination (all four tests)", honest_flagged))
    print(false_flag_line("baseline: likelihood test alone", honest_baseline))
    print(false_flag_line(f"combination, judges with own taste (sd {TASTE_SD_ELO:.0f} Elo)", taste_flagged))
    print(false_flag_line("combination, followed to 500 votes", long_flagged))
    print()
    best = min(timings)
    print(
        f"Screening 10,000 judges x 50 votes (all tests): best of 3 {best:.2f} s "
        f"({best / 500_000 * 1e6:.2f} us per vote); whole benchmark {elapsed:.0f} s"
    )


if __name__ == "__main__":
    main()
