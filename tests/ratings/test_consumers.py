import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from ratings import events
from ratings.consumers import LeaderboardConsumer

# Channels closes stale database connections around every message, so the test may touch the database.
pytestmark = pytest.mark.django_db


async def test_leaderboard_socket_forwards_updates_and_nothing_else():
    communicator = WebsocketCommunicator(LeaderboardConsumer.as_asgi(), "/ws/leaderboard/")
    connected, _ = await communicator.connect()
    assert connected
    message = events.leaderboard_update(
        reason="vote",
        online_elo=[{"name": "alpha", "rating": 1002.0, "votes": 1}],
        snapshot_id=None,
        updated="2024-08-14T00:00:00+00:00",
    )
    await get_channel_layer().group_send(events.GROUP, {**message, "battle_id": "leak", "model_a": "secret"})
    received = await communicator.receive_json_from(timeout=2)
    assert received == message
    await communicator.disconnect()


async def test_messages_from_the_browser_are_ignored():
    communicator = WebsocketCommunicator(LeaderboardConsumer.as_asgi(), "/ws/leaderboard/")
    await communicator.connect()
    await communicator.send_json_to({"type": "leaderboard.update", "online_elo": []})
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()
