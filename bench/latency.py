"""Time to first token through the arena versus straight from the llama.cpp server, same prompts, same run.

Starts its own stack on free ports (embedded Redis, the two default arena models on their own llama.cpp
servers, the uvicorn web server, a scratch SQLite database), then for each prompt measures, per model:
  arena:  WebSocket "start" message to /ws/battle/ -> first "delta" event of the side that model answers
  direct: the same messages (the model's system prompt + the prompt) and sampling settings, POSTed
          straight to that model's llama.cpp server (stream) -> first content chunk
Run: .venv/bin/python bench/latency.py [--rounds 10]
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.load_driver import battle_run, visitors_issue  # noqa: E402

PROMPTS = [
    "Name three primary colours.",
    "What is the capital of Italy?",
    "Give me a synonym for happy.",
    "Write a haiku about rain.",
    "How many legs does a spider have?",
]


async def ttft_direct(
    base_url: str, messages: list[dict], *, temperature=0.0, top_p=1.0, max_tokens=1, stop=None
) -> float:
    """The same request the arena sends (sampling settings and the template's stop strings included)."""
    payload = {"model": "m", "messages": messages, "max_tokens": max_tokens, "temperature": temperature,
               "top_p": top_p, "stream": True}  # fmt: skip
    if stop:
        payload["stop"] = stop
    async with httpx.AsyncClient(timeout=60) as client:
        started = time.perf_counter()
        first = None
        async with client.stream("POST", base_url + "/chat/completions", json=payload) as response:
            # Read the whole answer, so that runs don't overlap, noting when the first content arrives.
            async for line in response.aiter_lines():
                if first is None and line.startswith("data:") and '"content"' in line:
                    chunk = json.loads(line[5:])
                    if chunk["choices"][0]["delta"].get("content"):
                        first = time.perf_counter() - started
    return first


async def ttft_arena(web_url: str, prompt: str) -> tuple[str, dict[str, float]]:
    """The battle id and, per side, the time from sending the prompt to that side's first token."""
    async with httpx.AsyncClient(timeout=30) as client:
        [visitor] = await visitors_issue(client, web_url, 1)
    battle = await battle_run(web_url, visitor, prompt)
    if not battle.battle_id or battle.retry_after:
        raise RuntimeError(battle.error or "the battle did not start")
    return battle.battle_id, battle.ttft


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="arena-bench-"))
    env = {
        **os.environ,
        "ARENA_VAR_DIR": str(scratch),
        "DJANGO_SETTINGS_MODULE": "arena.settings",
        "BATTLES_PER_HOUR": "100000",
        "ANSWERS_PER_HOUR": "100000",
    }
    env.pop("DATABASE_URL", None)  # the scratch SQLite database, for the web server and for this process
    os.environ.pop("DATABASE_URL", None)
    os.environ.update(env)
    import django

    from arena import processes
    from arena.embedded_redis import embedded_redis
    from arena.processes import free_port, wait_for_http

    with embedded_redis(data_dir=scratch / "redis") as redis_url:
        env["REDIS_URL"] = os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", redis_url)
        django.setup()
        from django.core.management import call_command

        from inference import launch
        from inference.services import default_models_register

        call_command("migrate", verbosity=0)
        base_port = free_port()
        default_models_register(base_port=base_port)
        started = []
        try:
            servers = launch.model_servers(inventory=launch.GpuInventory(0, None, None))
            for server in servers:
                log_path = scratch / f"{server.program.name}.log"
                started.append(
                    (server, processes.start(server.program, log_path=log_path, env=launch.model_server_env()))
                )
            for server, process in started:
                launch.wait_until_ready(server.base_url, process=process)
            web_port = free_port()
            web = processes.start(processes.web_program(port=web_port), log_path=scratch / "web.log", env=env)
            started.append((None, web))
            web_url = f"http://127.0.0.1:{web_port}"
            wait_for_http(web_url + "/", timeout=20, process=web)
            from asgiref.sync import sync_to_async

            from battles.models import Battle
            from battles.selectors import battle_request_messages
            from inference.chat_format import template_stops

            @sync_to_async
            def sides_of(battle_id):
                battle = Battle.objects.select_related("model_a", "model_b", "endpoint_a", "endpoint_b").get(
                    pk=battle_id
                )
                return {
                    side: (getattr(battle, f"endpoint_{side}").base_url, getattr(battle, f"model_{side}"),
                           battle_request_messages(battle, side, turn_index=0))
                    for side in "ab"
                }  # fmt: skip

            server_urls = [server.base_url for server, _ in started if server]

            async def flush_prompt_caches():
                # llama.cpp reuses the longest prompt prefix it has already evaluated; a request with
                # another prompt in between makes every measurement start from the same cold state.
                for base_url in server_urls:
                    await ttft_direct(base_url, [{"role": "user", "content": "Unrelated."}])

            async def measure():
                await ttft_arena(web_url, "warm up")
                direct, arena = [], []
                for i in range(args.rounds):
                    await flush_prompt_caches()
                    battle_id, first = await ttft_arena(web_url, PROMPTS[i % len(PROMPTS)])
                    for side, (base_url, model, messages) in (await sides_of(battle_id)).items():
                        await flush_prompt_caches()
                        arena.append(first[side])
                        direct.append(
                            await ttft_direct(
                                base_url,
                                messages,
                                temperature=model.temperature,
                                top_p=model.top_p,
                                max_tokens=model.max_new_tokens,
                                stop=template_stops(model.chat_template),
                            )  # fmt: skip
                        )
                return direct, arena

            direct, arena = asyncio.run(measure())
        finally:
            for _, process in started:
                processes.stop(process)

    med_direct, med_arena = statistics.median(direct), statistics.median(arena)
    print(
        f"time to first token, {args.rounds} battles x 2 sides: SmolLM2-135M-Instruct and Gemma-3-270M on llama.cpp"
        " (1 thread per server)"
    )
    print(
        f"  direct to llama.cpp : median {med_direct * 1000:7.1f} ms   (min {min(direct) * 1000:.1f}, max {max(direct) * 1000:.1f})"
    )
    print(
        f"  through the arena   : median {med_arena * 1000:7.1f} ms   (min {min(arena) * 1000:.1f}, max {max(arena) * 1000:.1f})"
    )
    print(
        f"  arena overhead      : median {(med_arena - med_direct) * 1000:+7.1f} ms   ratio {med_arena / med_direct:.2f}x"
    )


if __name__ == "__main__":
    main()
