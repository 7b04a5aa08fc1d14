"""The endpoint health state machine (a circuit breaker), in plain Python."""

from inference.circuit import DEGRADED, DOWN, HEALTHY, Health, Policy, after_failure, after_probe, after_success

POLICY = Policy(failures_to_open=3, first_retry_after=15.0, longest_retry_after=60.0, slow_ttft=10.0)


def fail(health: Health, times: int, now: float = 100.0) -> Health:
    for _ in range(times):
        health = after_failure(health, now=now, error="refused", policy=POLICY)
    return health


def test_a_failure_degrades_and_three_in_a_row_take_the_endpoint_out():
    assert fail(Health(), 1).state == DEGRADED
    assert fail(Health(), 2).state == DEGRADED
    down = fail(Health(), 3)
    assert down.state == DOWN and down.retry_at == 115.0 and down.last_error == "refused"
    assert not down.routable(100.0) and down.routable(115.0)  # one trial once the wait is over


def test_a_success_closes_the_circuit_and_forgets_the_failures():
    health = after_success(fail(Health(), 3), now=200.0, ttft=0.2, duration=1.0, policy=POLICY)
    assert (health.state, health.failures, health.opens) == (HEALTHY, 0, 0)


def test_each_reopening_doubles_the_wait_up_to_the_cap():
    health = fail(Health(), 3)
    waits = []
    for _ in range(4):
        health = after_failure(health, now=1000.0, error="still down", policy=POLICY)  # a failed trial
        waits.append(health.retry_at - 1000.0)
    assert waits == [30.0, 60.0, 60.0, 60.0]


def test_a_probe_makes_a_down_endpoints_trial_due_and_a_failed_probe_counts_as_a_failure():
    down = fail(Health(), 3)
    assert not down.routable(101.0)
    probed = after_probe(down, now=101.0, ok=True, error="", policy=POLICY)
    assert probed.state == DOWN and probed.routable(101.0)  # one trial may go now
    # Only the trial's answer closes the circuit; its failure opens it again, with a longer wait than before.
    assert after_success(probed, now=102.0, ttft=0.1, duration=1.0, policy=POLICY).state == HEALTHY
    failed_again = after_failure(probed, now=102.0, error="404 model not found", policy=POLICY)
    assert failed_again.state == DOWN and failed_again.retry_at - 102.0 > down.retry_at - 100.0
    assert after_probe(Health(), now=1.0, ok=False, error="x", policy=POLICY).failures == 1


def test_slow_first_tokens_mark_an_answering_endpoint_degraded():
    health = Health()
    for _ in range(10):
        health = after_success(health, now=1.0, ttft=25.0, duration=30.0, policy=POLICY)
    assert health.state == DEGRADED and health.ttft > POLICY.slow_ttft


def test_health_round_trips_through_a_redis_hash_of_bytes():
    health = fail(Health(), 3)
    stored = {key.encode(): value.encode() for key, value in health.as_strings().items()}
    assert Health.from_strings(stored) == health
    assert Health.from_strings({b"state": b"down", b"failures": b"not a number"}).failures == 0


def test_a_probe_forgives_a_degraded_endpoint_only_once_its_bad_news_is_old():
    # Beside healthy replicas a degraded one may get no streams at all: only the probe can clear its name.
    failed = fail(Health(), 1, now=100.0)
    assert after_probe(failed, now=399.0, ok=True, error="", policy=POLICY).state == DEGRADED
    forgiven = after_probe(failed, now=400.0, ok=True, error="", policy=POLICY)
    assert (forgiven.state, forgiven.failures) == (HEALTHY, 0)
    assert after_probe(failed, now=400.0, ok=False, error="refused", policy=POLICY).state == DEGRADED

    slow = Health()
    for _ in range(10):
        slow = after_success(slow, now=100.0, ttft=25.0, duration=30.0, policy=POLICY)
    assert after_probe(slow, now=399.0, ok=True, error="", policy=POLICY).state == DEGRADED  # last slow answer recent
    forgiven = after_probe(slow, now=400.0, ok=True, error="", policy=POLICY)
    # Its slow average is forgotten: one answer in time, not ten, shows it is well again.
    assert forgiven.state == HEALTHY and forgiven.ttft is None
    assert after_success(forgiven, now=401.0, ttft=0.5, duration=4.0, policy=POLICY).state == HEALTHY
