"""Endpoint health in the shared Redis state: the one-round-trip success agrees with the circuit's rule."""

import math

import pytest

from arena import shared_state
from inference import circuit, health
from inference.circuit import DEGRADED, DOWN, HEALTHY, Health


def assert_same_health(stored: Health, expected: Health) -> None:
    """Equal but for the moment of the last success (taken a little apart) and float rounding."""
    for field in ("state", "failures", "opens", "retry_at", "last_error"):
        assert getattr(stored, field) == getattr(expected, field), field
    for field in ("ttft", "duration"):
        mine, theirs = getattr(stored, field), getattr(expected, field)
        assert (mine is None and theirs is None) or math.isclose(mine, theirs, rel_tol=1e-12), field
    assert stored.last_ok_at == pytest.approx(expected.last_ok_at, abs=5)


async def health_now(endpoint_id: int = 7) -> Health:
    return (await health.health_of([endpoint_id]))[endpoint_id]


async def test_every_success_moves_the_stored_health_as_the_circuit_rule_does():
    """Whatever the endpoint's state (new, healthy, degraded, down, slow), a success recorded in Redis leaves
    what circuit.after_success makes of the health stored before it."""
    slow = health.POLICY.slow_ttft * 10  # enough to lift the average past the threshold at once
    events = [("ok", 0.5, 4.0), ("ok", None, 3.0), ("ok", 0.25, None), ("fail",), ("ok", 1.75, 6.5)]
    events += [("fail",)] * health.POLICY.failures_to_open + [("ok", 0.125, 2.0), ("ok", slow, 40.0)]
    events += [("ok", 0.1, 2.0)] * 4
    states = set()
    for event in events:
        before = await health_now()
        if event[0] == "fail":
            await health.record_failure(7, error="refused")
            continue
        _, ttft, duration = event
        await health.record_success(7, ttft=ttft, duration=duration)
        after = await health_now()
        expected = circuit.after_success(
            before, now=after.last_ok_at, ttft=ttft, duration=duration, policy=health.POLICY
        )
        assert_same_health(after, expected)
        states.add((before.state, after.state))
    assert shared_state.shared_state_available()  # all of it in Redis, not the per-process fallback
    # The sequence went through every kind of success: healthy stays, degraded and down recover, slow degrades.
    assert {
        (HEALTHY, HEALTHY),
        (DEGRADED, HEALTHY),
        (DOWN, HEALTHY),
        (HEALTHY, DEGRADED),
        (DEGRADED, DEGRADED),
    } <= states


async def test_a_success_closes_an_open_circuit_and_forgets_the_failures():
    for _ in range(health.POLICY.failures_to_open):
        await health.record_failure(7, error="refused")
    assert (await health_now()).state == DOWN
    await health.record_success(7, ttft=0.2, duration=1.0)
    now = await health_now()
    assert (now.state, now.failures, now.opens, now.retry_at) == (HEALTHY, 0, 0, 0.0)
    assert now.last_error == "refused"  # kept for the admin to read


async def test_without_redis_each_process_keeps_its_own_view(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    await health.record_failure(7, error="refused")
    await health.record_success(7, ttft=0.3, duration=1.0)
    now = await health_now()
    assert (now.state, now.failures, now.ttft) == (HEALTHY, 0, 0.3)
