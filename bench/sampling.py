"""Benchmark: votes the pair-sampling policy needs against uniform pair sampling, on arenas shaped like the real one.

Run: .venv/bin/python bench/sampling.py [--seeds 16] [--batch 5000] [--ablations] [--quick]

True strengths are the Bradley-Terry fit of the shared 1,670,250 real battles (all 129 models). Each
seed starts every arm from the same warm-up of uniformly drawn battles, then adds battles in batches:
the uniform arm draws every pair equally often; the policy arm draws from `pair_policy` recomputed
before every batch from the current fit (ratings and `fisher_covariance`), as the site would from each
snapshot, with its defaults (exploration 10%, top_k 10, goals +-5 points for top-10 differences and
+-10 for every rating, focus power 8), `batch_votes` = the batch size, no boosts, all models available,
equal admin weights. `--ablations` adds the same policy planned with the sandwich covariance, and with
focus power 1 (plain summed variance). Outcomes follow `simulate.py`'s rule: P(tie) = 4 c p (1 - p)
with c = 0.3, half taken from each side, so ties-as-half-wins Bradley-Terry is the right model. After
every batch each arm is checked against two targets (both judged with the sandwich intervals the board
shows):

- top 10 resolved: for each of the 9 adjacent pairs of the TRUE top-10 order, the 95% sandwich interval
  of the fitted rating difference either excludes zero on the true side (the pair is separated) or has a
  half-width of at most 5 Elo points (the board can say they are within 5 points of each other). Plain
  separation of every adjacent pair is out of reach here: the real top 10 has gaps of 1.7-2.8 points;
  separating a 1.7-point gap takes some 10^5 votes between those two models even if every vote went to
  them, and about 2 x 10^7 votes under uniform sampling.
- every interval narrower than 20 Elo points: all 129 models' 95% sandwich intervals (relative to the
  board's centre, the mean weighted by votes) are narrower than 20 points.
The policy's own default goals are these two; the question is how much sooner it meets them.

Reported: votes (warm-up included) until each target first holds, per arm, medians over seeds, and the
policy/uniform ratio per seed (paired: same truth, same warm-up) with a bootstrap 95% interval of its
median. Target: the policy needs >= 30% fewer votes than uniform (median ratio <= 0.70); the interval
shows how sure that is.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# The matrices here are 129 x 129: BLAS threads only fight over the shared 2-core machine (measured: the
# policy arm ran ~8x slower with two threads while other work was running). Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ratings.engine import bradley_terry as bt  # noqa: E402
from ratings.engine.counts import counts_from_pair_counts_json  # noqa: E402
from ratings.engine.sampling import fisher_covariance, pair_policy  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "chatbot-arena-20240814" / "pair_counts.json"
TIE_PROPENSITY = 0.3  # simulate.py's default
TOP_K = 10
RESOLVED_HALF_WIDTH_ELO = 5.0
NARROW_WIDTH_ELO = 20.0
Z95 = 1.959963984540054


class Arena:
    """Battle counts of one simulated arena over every unordered pair, with its running fit."""

    def __init__(self, truth_theta: np.ndarray, rng: np.random.Generator):
        self.truth = truth_theta
        self.n = truth_theta.size
        self.rows, self.cols = np.triu_indices(self.n, k=1)
        p = 1.0 / (1.0 + np.exp(-(truth_theta[self.rows] - truth_theta[self.cols])))
        tie = 4.0 * TIE_PROPENSITY * p * (1.0 - p)
        # Per pair: P(row model wins), P(column model wins), P(tie); expected score of the row model is p.
        self.outcome_probabilities = np.column_stack([p - tie / 2, 1.0 - p - tie / 2, tie])
        self.counts = np.zeros((self.rows.size, 3))
        self.rng = rng
        self.theta = np.zeros(self.n)
        self.covariance = np.zeros((self.n, self.n))

    @property
    def votes(self) -> int:
        """Battles so far."""
        return int(self.counts.sum())

    def add_battles(self, pair_probabilities: np.ndarray, n_battles: int) -> None:
        """Draw `n_battles` pairs from the upper-triangle probabilities and simulate their outcomes."""
        per_pair = self.rng.multinomial(n_battles, pair_probabilities / pair_probabilities.sum())
        drawn = np.flatnonzero(per_pair)
        self.counts[drawn] += self.rng.multinomial(per_pair[drawn], self.outcome_probabilities[drawn])

    def refit(self) -> None:
        """Fit the current counts (warm start) and their sandwich covariance."""
        data = bt.PairData(self.n, self.rows, self.cols, self.counts[:, 0], self.counts[:, 1], self.counts[:, 2])
        self.theta = bt.fit_theta(data, theta0=self.theta)
        self.covariance = bt.sandwich_covariance(data, self.theta)
        self.data = data

    def votes_per_model(self) -> np.ndarray:
        """Battles each model took part in."""
        totals = self.counts.sum(axis=1)
        return np.bincount(self.rows, totals, self.n) + np.bincount(self.cols, totals, self.n)


def top_resolved(arena: Arena, true_top: np.ndarray, units: float) -> bool:
    """Each adjacent pair of the true top-k: separated on the true side, or its difference known to +-5 Elo."""
    higher, lower = true_top[:-1], true_top[1:]
    s = arena.covariance
    half_width = Z95 * np.sqrt(np.maximum(s[higher, higher] + s[lower, lower] - 2.0 * s[higher, lower], 0.0))
    difference = arena.theta[higher] - arena.theta[lower]
    separated = difference - half_width > 0.0
    precise = half_width <= RESOLVED_HALF_WIDTH_ELO * units
    return bool(np.all(separated | precise))


def widest_interval_elo(arena: Arena, units: float) -> float:
    """Width of the widest 95% interval (relative to the board's centre: the mean weighted by votes), Elo points."""
    votes = arena.votes_per_model()
    variance = bt.gauge_variances(arena.covariance, votes > 0, None, weights=votes)
    return float(2.0 * Z95 * np.sqrt(variance.max()) / units)


@dataclass(frozen=True)
class Arm:
    """One way of choosing pairs: uniform, or the policy with a covariance to plan with and its settings."""

    name: str
    uses_policy: bool
    plan_with_sandwich: bool = False
    focus_power: float = 8.0


ARMS = {
    "uniform": Arm("uniform", uses_policy=False),
    "policy": Arm("policy", uses_policy=True),
    # Ablations: the same policy planned with the sandwich covariance, and with plain summed variance.
    "policy-sandwich": Arm("policy-sandwich", uses_policy=True, plan_with_sandwich=True),
    "policy-power1": Arm("policy-power1", uses_policy=True, focus_power=1.0),
}


def run_arm(
    arm: Arm,
    truth: np.ndarray,
    warmup_counts: np.ndarray,
    rng: np.random.Generator,
    *,
    batch: int,
    cap: int,
    true_top: np.ndarray,
    units: float,
) -> tuple[float, float, list[float]]:
    """Votes until the top 10 resolved and until every interval < 20 Elo (inf if not by `cap`); policy timings."""
    arena = Arena(truth, rng)
    arena.counts += warmup_counts
    uniform = np.full(arena.rows.size, 1.0 / arena.rows.size)
    n = truth.size
    settings = dict(
        admin_weights=np.ones(n),
        boost_targets=np.zeros(n),
        available=np.ones(n, dtype=bool),
        top_k=TOP_K,
        batch_votes=batch,
        focus_power=arm.focus_power,
    )
    resolved_at = narrow_at = np.inf
    policy_seconds = []
    while True:
        arena.refit()
        if resolved_at == np.inf and top_resolved(arena, true_top, units):
            resolved_at = arena.votes
        if narrow_at == np.inf and widest_interval_elo(arena, units) < NARROW_WIDTH_ELO:
            narrow_at = arena.votes
        if (resolved_at < np.inf and narrow_at < np.inf) or arena.votes >= cap:
            return resolved_at, narrow_at, policy_seconds
        if not arm.uses_policy:
            arena.add_battles(uniform, batch)
            continue
        start = time.perf_counter()
        covariance = arena.covariance if arm.plan_with_sandwich else fisher_covariance(arena.data, arena.theta)
        policy = pair_policy(arena.theta / units, covariance, votes=arena.votes_per_model(), **settings)
        policy_seconds.append(time.perf_counter() - start)
        arena.add_battles(policy.probabilities[arena.rows, arena.cols], batch)


def bootstrap_median_interval(values: np.ndarray, seed: int = 0, rounds: int = 10_000) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of the median."""
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(values, size=(rounds, values.size)), axis=1)
    return float(np.quantile(medians, 0.025)), float(np.quantile(medians, 0.975))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--batch", type=int, default=5000, help="votes between policy updates (site snapshots)")
    parser.add_argument("--warmup", type=int, default=20_000, help="uniform battles every arm starts from")
    parser.add_argument("--cap", type=int, default=5_000_000, help="give up on an arm after this many votes")
    parser.add_argument("--ablations", action="store_true", help="also run the sandwich-planned and power-1 policies")
    parser.add_argument("--quick", action="store_true", help="3 seeds, 10,000-vote batches")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.batch = 3, 10_000
    arms = [ARMS["uniform"], ARMS["policy"]]
    if args.ablations:
        arms += [ARMS["policy-sandwich"], ARMS["policy-power1"]]

    pc = counts_from_pair_counts_json(DATA)
    truth = bt.fit_theta(bt.PairData.from_counts(pc))
    units = bt.elo_units()
    true_top = np.argsort(-truth)[:TOP_K]
    gaps = -np.diff(truth[true_top]) / units
    print(f"truth: BT fit of {pc.n_battles:,} real battles, {truth.size} models; adjacent top-10 gaps (Elo):")
    print("  " + ", ".join(f"{gap:.1f}" for gap in gaps))
    print(
        f"{args.seeds} seeds, warm-up {args.warmup:,} uniform battles, batches of {args.batch:,}, cap {args.cap:,};"
        f" ties with propensity {TIE_PROPENSITY}; arms: {', '.join(arm.name for arm in arms)}"
    )

    results = {arm.name: [] for arm in arms}
    policy_seconds = []
    start = time.perf_counter()
    for seed in tqdm(range(args.seeds), desc="seeds", mininterval=1.0):
        rng = np.random.default_rng(seed)
        warmup = Arena(truth, rng)
        warmup.add_battles(np.ones(warmup.rows.size), args.warmup)
        # Every arm starts from the same warm-up, then draws from its own stream.
        for arm, arm_rng in zip(arms, rng.spawn(len(arms)), strict=True):
            resolved, narrow, seconds = run_arm(
                arm, truth, warmup.counts, arm_rng, batch=args.batch, cap=args.cap, true_top=true_top, units=units
            )
            results[arm.name].append((resolved, narrow))
            if arm.name == "policy":
                policy_seconds += seconds
    elapsed = time.perf_counter() - start
    print(
        f"elapsed {elapsed:.0f} s (2-core machine); pair_policy (with fisher_covariance) per snapshot:"
        f" median {np.median(policy_seconds) * 1e3:.0f} ms over {len(policy_seconds)} calls"
    )

    uniform = np.array(results["uniform"])
    verdicts = []
    for column, target in enumerate(["top 10 resolved", "every interval < 20 Elo"]):
        print(f"{target}: votes needed (warm-up included), median over {args.seeds} seeds")
        print(f"  {'uniform (baseline)':<22} {np.median(uniform[:, column]):>11,.0f}")
        for arm in arms[1:]:
            votes = np.array(results[arm.name])[:, column]
            ratio = votes / uniform[:, column]
            low, high = bootstrap_median_interval(ratio)
            print(
                f"  {arm.name:<22} {np.median(votes):>11,.0f}   ratio to uniform: median {np.median(ratio):.3f}"
                f" (95% CI {low:.3f}-{high:.3f}), saving {1 - np.median(ratio):.0%}"
            )
            if arm.name == "policy":
                print(f"  {'':<22} per-seed ratios: {', '.join(f'{r:.2f}' for r in ratio)}")
                verdicts.append((target, np.median(ratio) <= 0.7, 1 - np.median(ratio), 1 - high))
    print("targets: policy needs >= 30% fewer votes than uniform (median ratio <= 0.70)")
    for target, met, saving, worst in verdicts:
        print(
            f"  {target}: {'MET' if met else 'MISSED'} (median saving {saving:.0%};"
            f" lower end of its 95% CI {worst:.0%})"
        )


if __name__ == "__main__":
    main()
