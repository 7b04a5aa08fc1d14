"""An endpoint's health as a small state machine (a circuit breaker), in plain Python.

healthy  -> answering; degraded -> answering, but it failed recently or its first tokens are slow (tried
after healthy replicas, and forgiven by a probe once that news is old); down -> taken out after repeated failures (the circuit is open) until one trial
request succeeds, due after a wait or at once when a probe finds the server answering. Each time it opens
again the wait before the next trial doubles.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

HEALTHY, DEGRADED, DOWN = "healthy", "degraded", "down"


@dataclass(frozen=True)
class Policy:
    failures_to_open: int = 3  # consecutive failures that take an endpoint out
    first_retry_after: float = 15.0  # seconds down before the first trial, then doubling ...
    longest_retry_after: float = 300.0  # ... up to this
    slow_ttft: float = 10.0  # a first token slower than this on average marks it degraded
    smoothing: float = 0.3  # weight of the newest observation in the moving averages
    # A degraded endpoint is tried only after healthy ones, so while they have room it gets no streams to clear
    # its name with: once its latest bad news (a failure, or a slow answer) is this old, a probe that finds it
    # answering gives it a fresh start.
    degraded_forgotten_after: float = 300.0


@dataclass(frozen=True)
class Health:
    state: str = HEALTHY
    failures: int = 0  # consecutive
    opens: int = 0  # consecutive times the circuit opened without a success in between
    retry_at: float = 0.0  # when down: the time a trial may be made
    ttft: float | None = None  # moving average of the time to first token, seconds
    duration: float | None = None  # moving average of a whole answer, seconds
    last_error: str = ""
    last_error_at: float = 0.0
    last_ok_at: float = 0.0
    probed_at: float = 0.0

    def routable(self, now: float) -> bool:
        """May a stream be sent here now? Down endpoints only once their trial is due."""
        return self.state != DOWN or now >= self.retry_at

    def as_strings(self) -> dict[str, str]:
        return {key: "" if value is None else str(value) for key, value in asdict(self).items()}

    @classmethod
    def from_strings(cls, fields: dict) -> Health:
        """From a Redis hash (bytes or str values); missing or unreadable fields take their defaults."""
        decoded = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in fields.items()
        }
        values = {}
        for name, default in asdict(cls()).items():
            raw = decoded.get(name)
            if raw is None or raw == "":
                continue
            try:
                values[name] = (
                    raw if isinstance(default, str) else (int(raw) if isinstance(default, int) else float(raw))
                )
            except ValueError:
                continue
        return cls(**values)


def _average(previous: float | None, value: float, smoothing: float) -> float:
    return value if previous is None else (1 - smoothing) * previous + smoothing * value


def after_success(health: Health, *, now: float, ttft: float | None, duration: float | None, policy: Policy) -> Health:
    """An answer streamed in full: close the circuit, and keep an eye on how slow it is."""
    average_ttft = health.ttft if ttft is None else _average(health.ttft, ttft, policy.smoothing)
    average_duration = health.duration if duration is None else _average(health.duration, duration, policy.smoothing)
    slow = average_ttft is not None and average_ttft > policy.slow_ttft
    return replace(
        health, state=DEGRADED if slow else HEALTHY, failures=0, opens=0, retry_at=0.0,
        ttft=average_ttft, duration=average_duration, last_ok_at=now,
    )  # fmt: skip


def after_failure(health: Health, *, now: float, error: str, policy: Policy) -> Health:
    """A stream failed at this endpoint: degrade it, and take it out after repeated failures."""
    failures = health.failures + 1
    if failures < policy.failures_to_open and health.state != DOWN:
        return replace(health, state=DEGRADED, failures=failures, last_error=error, last_error_at=now)
    opens = health.opens + 1
    wait = min(policy.first_retry_after * 2 ** (opens - 1), policy.longest_retry_after)
    return replace(
        health, state=DOWN, failures=failures, opens=opens, retry_at=now + wait, last_error=error, last_error_at=now
    )


def _latest_bad_news(health: Health) -> float:
    """When a degraded endpoint last gave cause: a failure, or a slow answer (its last success, when slow)."""
    slow = health.last_ok_at if health.failures == 0 else 0.0
    return max(health.last_error_at, slow)


def after_probe(health: Health, *, now: float, ok: bool, error: str, policy: Policy) -> Health:
    """The periodic probe's verdict: a success makes a down endpoint's trial due now; a failure counts like any
    other. A listing of models that answers says the server is up, not that it answers chats (a retired or
    misspelt model id fails every chat while /models answers): only the trial's answer closes the circuit,
    and its failure opens it again with a longer wait, where a probe that closed it kept the wait at its
    shortest and sent every third visitor's side to a failure. A degraded endpoint whose latest bad news is
    old (Policy.degraded_forgotten_after) is healthy again: its failures and slow average are forgotten, and
    the next answers judge it afresh."""
    if ok:
        if health.state == DOWN:
            return replace(health, retry_at=min(health.retry_at, now), probed_at=now)
        if health.state == DEGRADED and now - _latest_bad_news(health) >= policy.degraded_forgotten_after:
            return replace(health, state=HEALTHY, failures=0, ttft=None, probed_at=now)
        return replace(health, probed_at=now)
    return replace(after_failure(health, now=now, error=error, policy=policy), probed_at=now)
