"""Celery entry points of the inference app: the active health probe of every endpoint."""

import asyncio
import logging

from celery import shared_task

from arena import shared_state
from inference import health, routing
from inference.client import ChatTarget, InferenceError, close_pooled_client, list_models
from inference.models import Endpoint
from inference.selectors import replica_of

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 5.0
PROBES_AT_ONCE = 16


async def _probe_all(endpoints: list[Endpoint]) -> dict[int, str]:
    """GET /models on each endpoint, a few at a time; returns the error per endpoint ('' when it answered)."""
    gate = asyncio.Semaphore(PROBES_AT_ONCE)

    async def probe(endpoint: Endpoint) -> tuple[int, str]:
        target = ChatTarget(base_url=endpoint.base_url, model=endpoint.served_model_id, api_key=endpoint.api_key)
        async with gate:
            try:
                await list_models(target, timeout=PROBE_TIMEOUT)
                error = ""
            except InferenceError as exc:
                error = str(exc)[:300]
                if exc.kind == "timeout" and await _streaming(endpoint):
                    # llama.cpp's server lists its models only between answers (one lock for both): a probe
                    # that waited behind a long answer says nothing against it; the answer itself will.
                    return endpoint.pk, f"busy streaming, not counted: {error}"
        await health.record_probe(endpoint.pk, ok=not error, error=error)
        return endpoint.pk, error

    try:
        return dict(await asyncio.gather(*(probe(endpoint) for endpoint in endpoints)))
    finally:
        await close_pooled_client()
        await shared_state.close_loop_client()


async def _streaming(endpoint: Endpoint) -> bool:
    """Whether the endpoint has answers streaming now (its leases in the shared state)."""
    [state] = await routing.replica_states([replica_of(endpoint)])
    return state.in_flight > 0


@shared_task(name="inference.tasks.endpoints_probe", ignore_result=True)
def endpoints_probe() -> dict[int, str]:
    """Probe every active endpoint (beat runs this every HEALTH_PROBE_INTERVAL seconds): a success brings a
    down endpoint back into routing, a failure counts towards taking it out."""
    endpoints = list(Endpoint.objects.filter(is_active=True, model__is_active=True, model__is_historical=False))
    errors = asyncio.run(_probe_all(endpoints))
    failed = {pk: error for pk, error in errors.items() if error}
    if failed:
        logger.info("Endpoint probe: %s of %s failed: %s", len(failed), len(errors), failed)
    return errors
