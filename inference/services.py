"""Writes and checks on the model registry."""

import random
import time
from dataclasses import dataclass

from django.db import transaction

from inference.client import ChatTarget, InferenceError, Limits, complete_chat
from inference.launch import BUNDLED_GEMMA3, BUNDLED_SMOLLM2
from inference.models import ArenaModel, Endpoint, SamplingPlan, no_control_characters, plain_base_url
from inference.selectors import drawable_candidates, sampling_plan_latest

SMOLLM2_SERVED_ID = "smollm2-135m-instruct"
GEMMA3_SERVED_ID = "gemma-3-270m"


class NotEnoughModels(Exception):
    """Fewer than two active models with a working endpoint are registered."""


def historical_model_goes_live(model: ArenaModel) -> None:
    """An imported historical model becomes live once an admin gives it an endpoint (from the command line or
    the admin): checked for leaks, probed, and no longer marked historical on its page."""
    if model.is_historical:
        model.is_historical = False
        model.save(update_fields=["is_historical"])


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
    no_control_characters(weights)
    plain_base_url(base_url)  # before anything is stored
    model = ArenaModel.objects.filter(name=name).first()
    created = model is None
    if created:
        model = ArenaModel(
            name=name, organization=organization, license=license, system_prompt=system_prompt,
            temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, context_length=context_length,
            sampling_weight=sampling_weight, hosting=hosting, weights=weights, chat_template=chat_template,
        )  # fmt: skip
        model.full_clean()  # as the admin checks it: a chat template that exists, a context that is one
        model.save()
    if not created:
        historical_model_goes_live(model)
    if not Endpoint.objects.filter(model=model, base_url=base_url, served_model_id=served_model_id).exists():
        endpoint = Endpoint(model=model, base_url=base_url, served_model_id=served_model_id, api_key=api_key, port=port)
        endpoint.clean_fields(exclude=["base_url", "api_key"])  # the port's range, the served id's characters
        endpoint.clean()  # a local server's port: its own, and the one its base URL names
        endpoint.save()
    return model


# A neutral system prompt for every default model. Without one, SmolLM2's own chat template adds "You are
# a helpful AI assistant named SmolLM, trained by Hugging Face", which would tell the voter who answers.
NEUTRAL_SYSTEM_PROMPT = "You are a helpful assistant."


def default_models_register(*, host: str = "127.0.0.1", base_port: int = 8081) -> list[ArenaModel]:
    """Two different real models that run on any CPU, offline, each on its own llama.cpp server.

    SmolLM2-135M-Instruct is instruction tuned; Gemma 3 270M is a base model, prompted through the
    Vicuna v1.1 template (the Vicuna path, running for real): a fair baseline that shows what instruction
    tuning is worth. Same sampling settings for both, so the votes compare the models.
    """
    defaults = [
        dict(name="SmolLM2-135M-Instruct", organization="HuggingFaceTB", license="Apache-2.0",
             weights=BUNDLED_SMOLLM2, served_model_id=SMOLLM2_SERVED_ID, system_prompt=NEUTRAL_SYSTEM_PROMPT,
             chat_template=""),
        dict(name="Gemma-3-270M (base model, not instruction tuned)", organization="Google",
             license="Gemma Terms of Use", weights=BUNDLED_GEMMA3, served_model_id=GEMMA3_SERVED_ID,
             system_prompt="", chat_template="vicuna_v1.1"),
    ]  # fmt: skip
    models = []
    for offset, fields in enumerate(defaults):
        port = base_port + offset
        models.append(
            model_register(
                **fields,
                base_url=f"http://{host}:{port}/v1",
                port=port,
                temperature=0.7,
                top_p=0.95,
                max_new_tokens=256,
                context_length=2048,
                hosting=ArenaModel.Hosting.LLAMACPP,
            )  # fmt: skip
        )
    return models


def _pair_weights(candidates: list[ArenaModel]) -> dict[tuple[int, int], float]:
    """Weight of each unordered pair of candidates (ids in ascending order).

    From the newest sampling plan when there is one (ratings writes it after each snapshot; see
    ratings/engine/sampling.py). A pair the plan does not know (a model added since) gets the plan's
    smallest weight, so a new model is drawn from the start. Without a plan: the product of the admins'
    sampling weights.
    """
    ids = sorted(m.pk for m in candidates)
    admin = {m.pk: m.sampling_weight for m in candidates}
    pairs = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :]]
    plan = sampling_plan_latest()
    if plan is None:
        return {(a, b): admin[a] * admin[b] for a, b in pairs}
    planned = {(min(a, b), max(a, b)): float(p) for a, b, p in plan.pair_probabilities}
    floor = min((p for p in planned.values() if p > 0), default=1.0)
    return {(a, b): planned.get((a, b), floor) for a, b in pairs}


def battle_pair_draw(
    *, ready: set[int] | None = None, rng: random.Random | None = None
) -> tuple[ArenaModel, ArenaModel]:
    """Two distinct drawable models, among those `ready` to answer (all when None), in random left/right order."""
    rng = rng or random.SystemRandom()
    candidates = drawable_candidates()
    if ready is not None:
        candidates = [m for m in candidates if m.pk in ready]
    if len(candidates) < 2:
        raise NotEnoughModels("the arena needs at least two drawable models with an active endpoint")
    weights = _pair_weights(candidates)
    pairs = [pair for pair, weight in weights.items() if weight > 0]
    if not pairs:
        raise NotEnoughModels("no pair of drawable models has a positive sampling weight")
    a, b = rng.choices(pairs, weights=[weights[pair] for pair in pairs])[0]
    by_id = {m.pk: m for m in candidates}
    pair = [by_id[a], by_id[b]]
    rng.shuffle(pair)
    return pair[0], pair[1]


def sampling_plan_store(*, pair_probabilities: list[list], summary: dict) -> SamplingPlan:
    """Keep a new plan for drawing pairs ([[model_a_id, model_b_id, probability], ...]); older plans go."""
    plan = SamplingPlan.objects.create(pair_probabilities=pair_probabilities, summary=summary)
    SamplingPlan.objects.filter(pk__lt=plan.pk).delete()
    return plan


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
            max_tokens=8, temperature=0.0, limits=Limits(connect=min(timeout, 5.0), idle=timeout, answer=timeout),
        )  # fmt: skip
    except InferenceError as exc:
        return EndpointCheck(endpoint=endpoint, ok=False, error=str(exc))
    return EndpointCheck(
        endpoint=endpoint, ok=True, latency=time.monotonic() - started,
        ttft=stats.as_dict()["ttft"], reply=reply.strip(),
    )  # fmt: skip
