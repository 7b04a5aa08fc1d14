"""Reads of the model registry: which replicas serve which models, as routing sees them."""

from __future__ import annotations

import time
from collections import defaultdict

from arena.db import off_loop
from inference.fields import undecryptable_pks
from inference.models import ArenaModel, Endpoint, SamplingPlan
from inference.routing import Replica

# How long a process reuses its view of the registry before reading it again (admin changes show up
# within this many seconds in other processes; in the process that saved them, at once). Reading it for
# every battle was a fifth of the web tier's database CPU.
FLEET_CACHE_SECONDS = 5.0
_cache: dict[str, tuple[float, object]] = {}


def _cached(name: str, read):
    """read(), or this process's copy of it if younger than FLEET_CACHE_SECONDS."""
    now = time.monotonic()
    cached = _cache.get(name)
    if cached is None or now - cached[0] > FLEET_CACHE_SECONDS:
        cached = (now, read())
        _cache[name] = cached
    return cached[1]


def replica_of(endpoint: Endpoint) -> Replica:
    return Replica(
        endpoint_id=endpoint.pk,
        model_id=endpoint.model_id,
        base_url=endpoint.base_url,
        served_model_id=endpoint.served_model_id,
        api_key=endpoint.api_key,
        max_concurrency=endpoint.max_concurrency,
    )


def drawable_models():
    """Models that may be drawn into a new battle: active, not retired, with a sampling weight."""
    return ArenaModel.objects.filter(is_active=True, retired_at__isnull=True, sampling_weight__gt=0)


def replicas_by_model(model_ids: list[int] | None = None, *, drawable_only: bool = True) -> dict[int, list[Replica]]:
    """Active endpoints per model: of the given models, or of every drawable model (of every model, if not
    `drawable_only`)."""
    endpoints = Endpoint.objects.filter(is_active=True)
    if model_ids is not None:
        endpoints = endpoints.filter(model_id__in=model_ids)
    elif drawable_only:
        endpoints = endpoints.filter(model__in=drawable_models())
    grouped: dict[int, list[Replica]] = defaultdict(list)
    for endpoint in endpoints.order_by("pk"):
        grouped[endpoint.model_id].append(replica_of(endpoint))
    return dict(grouped)


async def drawable_replicas() -> dict[int, list[Replica]]:
    """`replicas_by_model()` of the drawable models, cached per process for a few seconds."""
    now = time.monotonic()
    cached = _cache.get("drawable")
    if cached is None or now - cached[0] > FLEET_CACHE_SECONDS:
        cached = (now, await off_loop(replicas_by_model)())
        _cache["drawable"] = cached  # (a save in another thread may clear the cache at any moment)
    return cached[1]


def drawable_candidates() -> list[ArenaModel]:
    """The drawable models that have an active endpoint (cached for a few seconds; treat as read-only)."""
    return _cached("candidates", lambda: list(drawable_models().filter(endpoints__is_active=True).distinct()))


def replicas_of_models(model_ids: list[int]) -> dict[int, list[Replica]]:
    """`replicas_by_model(model_ids)` from this process's view of every active endpoint, read again after
    FLEET_CACHE_SECONDS: a turn finds its two models' replicas without a query of its own."""
    everything = _cached("active", lambda: replicas_by_model(drawable_only=False))
    return {model_id: everything[model_id] for model_id in model_ids if model_id in everything}


def forget_cached_fleet() -> None:
    _cache.clear()


def sampling_plan_latest() -> SamplingPlan | None:
    """The newest plan for drawing pairs (cached for a few seconds, like the fleet)."""
    return _cached("plan", lambda: SamplingPlan.objects.order_by("-id").first())


def endpoints_with_unreadable_keys() -> list[int]:
    """Ids of the endpoints whose stored API key no configured encryption key opens."""
    return undecryptable_pks(Endpoint, "api_key")
