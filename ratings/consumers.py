"""The leaderboard socket: read-only; forwards leaderboard updates to every open /leaderboard page."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from ratings import events


class LeaderboardConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        # The leaderboard is public, so anyone may listen; nobody may send.
        await self.channel_layer.group_add(events.GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(events.GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs):
        pass  # nothing to ask for: pages fetch /api/leaderboard for anything beyond updates

    async def leaderboard_update(self, event: events.LeaderboardUpdate):
        # Rebuild the message from its known fields so nothing else put on the group reaches browsers.
        await self.send_json(
            events.leaderboard_update(
                reason=event["reason"],
                online_elo=event["online_elo"],
                snapshot_id=event["snapshot_id"],
                updated=event["updated"],
            )  # fmt: skip
        )
