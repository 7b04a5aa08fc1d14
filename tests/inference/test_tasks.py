"""The periodic health probe: a down endpoint that answers again comes back; one that doesn't stays out."""

import time
from dataclasses import replace

import pytest

from inference import health
from inference.circuit import HEALTHY
from inference.tasks import endpoints_probe
from tests.factories import make_model

pytestmark = pytest.mark.django_db


def test_the_probe_brings_back_an_endpoint_that_answers_and_counts_one_that_does_not(scripted_api):
    from asgiref.sync import async_to_sync

    up = make_model("up", base_url=scripted_api.url("ok")).endpoints.get()
    gone = make_model("gone", base_url="http://127.0.0.1:9/v1").endpoints.get()
    for endpoint in (up, gone):
        for _ in range(health.POLICY.failures_to_open):
            async_to_sync(health.record_failure)(endpoint.pk, error="refused")
    errors = endpoints_probe()
    assert errors[up.pk] == "" and "unreachable" in errors[gone.pk]
    states = async_to_sync(health.health_of)([up.pk, gone.pk])
    now = time.time()
    assert states[up.pk].routable(now) and not states[gone.pk].routable(now)  # up: its trial is due at once
    async_to_sync(health.record_success)(up.pk, ttft=0.1, duration=1.0)  # the trial answered
    assert async_to_sync(health.health_of)([up.pk])[up.pk].state == HEALTHY


def test_a_probe_that_waited_behind_an_answer_streaming_there_is_not_counted_against_it(scripted_api, monkeypatch):
    """llama.cpp's server lists its models only between answers: during a long answer the probe times out.
    That says nothing against a server that is answering; three such probes took it out mid-answer."""
    from asgiref.sync import async_to_sync

    from inference import routing, tasks
    from inference.selectors import replica_of

    monkeypatch.setattr(tasks, "PROBE_TIMEOUT", 0.3)  # the scripted server lists its models after 1 s
    answering = make_model("answering", base_url=scripted_api.url("busy")).endpoints.get()
    async_to_sync(routing.reserve)([replica_of(answering)], hold_seconds=60)  # an answer streams there
    for _ in range(health.POLICY.failures_to_open):
        assert "busy streaming, not counted" in endpoints_probe()[answering.pk]
    assert async_to_sync(health.health_of)([answering.pk])[answering.pk].failures == 0
    idle = make_model("idle", base_url=scripted_api.url("busy")).endpoints.get()  # nothing streams: it counts
    assert "timeout" in endpoints_probe()[idle.pk]
    assert async_to_sync(health.health_of)([idle.pk])[idle.pk].failures == 1


def test_the_probe_gives_a_degraded_endpoint_a_fresh_start_once_its_failure_is_old(scripted_api, monkeypatch):
    """Beside a healthy replica, a degraded one may get no streams to clear its name with."""
    from asgiref.sync import async_to_sync

    from inference.circuit import DEGRADED

    endpoint = make_model("stumbled", base_url=scripted_api.url("ok")).endpoints.get()
    async_to_sync(health.record_failure)(endpoint.pk, error="refused")
    endpoints_probe()
    assert async_to_sync(health.health_of)([endpoint.pk])[endpoint.pk].state == DEGRADED  # the failure is recent
    monkeypatch.setattr(health, "POLICY", replace(health.POLICY, degraded_forgotten_after=0.0))
    assert endpoints_probe()[endpoint.pk] == ""
    now_health = async_to_sync(health.health_of)([endpoint.pk])[endpoint.pk]
    assert (now_health.state, now_health.failures) == (HEALTHY, 0)
