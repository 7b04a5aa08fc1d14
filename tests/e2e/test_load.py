"""The web tier under concurrent load, for correctness (bench/load.py measures speed): two real web
processes on one port, a paced scripted model server, battles started all at once over the WebSocket,
and each battle voted on twice at once (over HTTP and on a socket, as a page and a replay might). Every
battle must complete and every battle's vote be counted once."""

import asyncio

import httpx
import pytest

from arena import processes
from arena.processes import free_port
from battles.models import Battle, Vote
from inference.models import ArenaModel, Endpoint
from tests.conftest import serving
from tests.load_driver import battle_run, battle_socket, visitors_issue, vote_cast, vote_on_socket

pytestmark = pytest.mark.django_db(transaction=True)

BATTLES = 30


@pytest.fixture
def paced_server():
    port = free_port()
    program = processes.Program(
        name="paced", argv=processes.python_module("tests.load_driver", "--port", str(port), "--tokens", "20",
                                                   "--rate", "100"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    with serving(program, ready_url=url + "/models", log_name=f"paced-{port}.log", timeout=20):
        yield url


@pytest.fixture
def two_web_processes(child_env):
    port = free_port()
    env = {**child_env, "BATTLES_PER_HOUR": "10000", "ANSWERS_PER_HOUR": "10000", "SESSIONS_PER_HOUR": "10000"}
    url = f"http://127.0.0.1:{port}"
    program = processes.web_program(port=port, processes=2)
    with serving(program, ready_url=url + "/", log_name=f"web-load-{port}.log", env=env, timeout=60):
        yield url


def test_concurrent_battles_on_two_web_processes_all_complete_and_each_vote_counts_once(
    paced_server, two_web_processes
):
    for name in ("load-left", "load-right"):
        model = ArenaModel.objects.create(name=name)
        Endpoint.objects.create(model=model, base_url=paced_server, served_model_id="scripted", max_concurrency=1000)
    web_url = two_web_processes

    async def run():
        async with httpx.AsyncClient(timeout=60) as client:
            visitors = await visitors_issue(client, web_url, BATTLES)
            battles = await asyncio.gather(*(battle_run(web_url, v, f"Prompt {i}") for i, v in enumerate(visitors)))

            # Each visitor votes twice at once, over HTTP and on a socket (which may land on the other
            # process): one must count, the other be refused.
            async def on_socket(visitor, battle) -> bool:
                async with battle_socket(web_url, visitor) as socket:
                    return await vote_on_socket(socket, battle, "b")

            async def twice(visitor, battle) -> tuple[int, bool]:
                response, recorded = await asyncio.gather(
                    vote_cast(client, web_url, visitor, battle, "a"), on_socket(visitor, battle)
                )
                return response.status_code, recorded

            votes = await asyncio.gather(*(twice(v, b) for v, b in zip(visitors, battles, strict=True)))
            return battles, votes

    battles, votes = asyncio.run(run())
    assert all(b.ok for b in battles), [b.error for b in battles if not b.ok]
    assert all(set(b.ttft) == {"a", "b"} for b in battles)
    # Per battle, exactly one of the two got through: (200, refused on the socket) or (400, recorded).
    assert set(votes) <= {(200, False), (400, True)} and len(votes) == BATTLES, votes
    assert Battle.objects.count() == BATTLES
    assert Vote.objects.count() == BATTLES
    assert {str(pk) for pk in Vote.objects.values_list("battle_id", flat=True)} == {b.battle_id for b in battles}
