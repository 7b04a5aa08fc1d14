"""One address cannot hold open more WebSockets than its share, through the real web server."""

import asyncio

import pytest
import websockets

from arena import processes
from arena.processes import free_port
from tests.conftest import serving

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_address_past_its_open_sockets_is_refused_until_one_closes_and_metrics_count_it(child_env):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**child_env, "SOCKETS_PER_ADDRESS": "3"}
    with serving(processes.web_program(port=port), ready_url=url + "/", log_name=f"web-sockets-{port}.log", env=env):

        async def leaderboard_socket():
            return await websockets.connect(
                f"ws://127.0.0.1:{port}/ws/leaderboard/", additional_headers={"Origin": url}
            )

        async def scenario():
            held = [await leaderboard_socket() for _ in range(3)]
            with pytest.raises(websockets.InvalidStatus) as refused:
                await leaderboard_socket()
            assert refused.value.response.status_code == 403
            await held.pop().close()
            await asyncio.sleep(0.2)  # the server sees the close
            held.append(await leaderboard_socket())  # one closed: one may open
            for socket in held:
                await socket.close()

        asyncio.run(scenario())
        import httpx

        scrape = httpx.get(url + "/metrics").text
        assert "arena_sockets_refused_total 1.0" in scrape
