"""Every message of the leaderboard socket, as TypedDicts, and the one place that sends them.

Only leaderboard data goes out: online Elo rows (models with rated votes) and the id of the newest
snapshot. Nothing about battles that are still open.
"""

import logging
from typing import Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

GROUP = "leaderboard"


class EloRow(TypedDict):
    name: str
    rating: float
    votes: int


class LeaderboardUpdate(TypedDict):
    """Group message (type routes it to LeaderboardConsumer.leaderboard_update) and what the browser gets."""

    type: Literal["leaderboard.update"]
    reason: Literal["vote", "snapshot"]
    online_elo: list[EloRow]
    snapshot_id: int | None
    updated: str


def leaderboard_update(
    *, reason: Literal["vote", "snapshot"], online_elo: list[EloRow], snapshot_id: int | None, updated: str
) -> LeaderboardUpdate:
    return {
        "type": "leaderboard.update",
        "reason": reason,
        "online_elo": [{"name": r["name"], "rating": r["rating"], "votes": r["votes"]} for r in online_elo],
        "snapshot_id": snapshot_id,
        "updated": updated,
    }


def leaderboard_broadcast(message: LeaderboardUpdate) -> bool:
    """Send to every open leaderboard page. Returns False (and logs) instead of raising: a rating that
    was stored must not fail because Redis is down; pages catch up on their next load."""
    try:
        layer = get_channel_layer()
        if layer is None:
            return False
        async_to_sync(layer.group_send)(GROUP, message)
    except Exception:  # noqa: BLE001 - any transport error (connection refused, timeout) is non-fatal
        logger.warning("Could not notify leaderboard pages", exc_info=True)
        return False
    return True
