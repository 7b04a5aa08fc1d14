"""Writes and checks on the model registry."""

import random
import time
from dataclasses import dataclass

from django.db import transaction

from inference.client import ChatTarget, InferenceError, complete_chat
from inference.models import ArenaModel, Endpoint

SMOLLM2_SERVED_ID = "smollm2-135m-instruct"


class NotEnoughModels(Exception):
    """Fewer than two active models with a working endpoint are registered."""


@transaction.atomic
def model_register(
    *,
    name: str,
    base_url: str,
    served_model_id: str,
    api_key: str = "",
    organization: str = "",
    license: str = "",
    system_prompt: str = "",
    temperature: float = 0.7,
    top_p: float = 1.0,
    max_new_tokens: int = 512,
    context_length: int = 2048,
    sampling_weight: float = 1.0,
    hosting: str = ArenaModel.Hosting.REMOTE,
    weights: str = "",
    chat_template: str = "",
    port: int | None = None,
) -> ArenaModel:
    """Register a model with one endpoint, or add the endpoint as a replica of an existing model."""
    model, created = ArenaModel.objects.get_or_create(
        name=name,
        defaults=dict(
            organization=organization, license=license, system_prompt=system_prompt, temperature=temperature,
            top_p=top_p, max_new_tokens=max_new_tokens, context_length=context_length,
            sampling_weight=sampling_weight, hosting=hosting, weights=weights, chat_template=chat_template,
        ),
    )  # fmt: skip
    if not created and model.is_historical:
        # An imported historical model becomes live once an admin gives it an endpoint.
        model.is_historical = False
        model.save(update_fields=["is_historical"])
    Endpoint.objects.get_or_create(
        model=model, base_url=base_url, served_model_id=served_model_id,
        defaults={"api_key": api_key, "port": port},
    )  # fmt: skip
    return model


def default_models_register(*, host: str = "127.0.0.1", base_port: int = 8081) -> list[ArenaModel]:
    """Two honestly labelled arena models on the bundled SmolLM2-135M, each with its own llama.cpp server.

    Same weights, different system prompt and temperature: enough for real battles on a laptop.
    """
    variants = [
        ("SmolLM2-135M-Instruct (precise, T=0.2)", "You are a precise assistant. Answer briefly and accurately.", 0.2),
        ("SmolLM2-135M-Instruct (creative, T=0.9)", "You are a friendly, imaginative assistant.", 0.9),
    ]
    models = []
    for offset, (name, system_prompt, temperature) in enumerate(variants):
        port = base_port + offset
        models.append(
            model_register(
                name=name,
                organization="HuggingFaceTB",
                license="Apache-2.0",
                base_url=f"http://{host}:{port}/v1",
                served_model_id=SMOLLM2_SERVED_ID,
                system_prompt=system_prompt,
                temperature=temperature,
                max_new_tokens=256,
                context_length=2048,
                hosting=ArenaModel.Hosting.LLAMACPP,
                port=port,
            )  # fmt: skip
        )
    return models


def battle_pair_draw(*, rng: random.Random | None = None) -> tuple[ArenaModel, ArenaModel]:
    """Two distinct active models drawn by sampling weight, in random left/right order."""
    rng = rng or random.SystemRandom()
    candidates = list(
        ArenaModel.objects.filter(is_active=True, sampling_weight__gt=0, endpoints__is_active=True).distinct()
    )
    if len(candidates) < 2:
        raise NotEnoughModels("the arena needs at least two active models with an active endpoint")
    first = rng.choices(candidates, weights=[m.sampling_weight for m in candidates])[0]
    rest = [m for m in candidates if m.pk != first.pk]
    second = rng.choices(rest, weights=[m.sampling_weight for m in rest])[0]
    pair = [first, second]
    rng.shuffle(pair)
    return pair[0], pair[1]


def endpoint_pick(model: ArenaModel, *, rng: random.Random | None = None) -> Endpoint:
    """One active replica of the model, at random."""
    rng = rng or random.SystemRandom()
    endpoints = list(model.endpoints.filter(is_active=True))
    if not endpoints:
        raise NotEnoughModels(f"model {model.pk} has no active endpoint")
    return rng.choice(endpoints)


def endpoint_target(endpoint: Endpoint) -> ChatTarget:
    return ChatTarget(base_url=endpoint.base_url, model=endpoint.served_model_id, api_key=endpoint.api_key)


@dataclass
class EndpointCheck:
    endpoint: Endpoint
    ok: bool
    latency: float | None = None
    ttft: float | None = None
    reply: str = ""
    error: str = ""


async def endpoint_check(endpoint: Endpoint, *, timeout: float = 30.0) -> EndpointCheck:
    """Send a real one-line request and report latency, or the error (admins only: may name the host)."""
    started = time.monotonic()
    try:
        reply, stats = await complete_chat(
            endpoint_target(endpoint), [{"role": "user", "content": "Say hello in one word."}],
            max_tokens=8, temperature=0.0, connect_timeout=min(timeout, 5.0), idle_timeout=timeout,
        )  # fmt: skip
    except InferenceError as exc:
        return EndpointCheck(endpoint=endpoint, ok=False, error=str(exc))
    return EndpointCheck(
        endpoint=endpoint, ok=True, latency=time.monotonic() - started,
        ttft=stats.as_dict()["ttft"], reply=reply.strip(),
    )  # fmt: skip
