"""The battle WebSocket: parses visitor messages, calls the services, streams the answers back."""

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from battles import events, services
from battles.streaming import turn_answer_both


class BattleConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        session = self.scope.get("session")
        if session is None or not session.session_key:
            # Sessions are created by the arena page; a socket without one can't own a battle.
            await self.close(code=4401)
            return
        self.session_key = session.session_key
        # Daphne fills scope["client"] (run it with --proxy-headers behind a reverse proxy).
        self.client_ip = (self.scope.get("client") or ("",))[0] or ""
        self.streaming: asyncio.Task | None = None
        await self.accept()

    async def disconnect(self, code):
        if getattr(self, "streaming", None) and not self.streaming.done():
            self.streaming.cancel()

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            await self.send_json(events.error("Messages must be JSON objects."))
            return
        if self.streaming and not self.streaming.done():
            await self.send_json(events.error("Please wait until both answers have finished."))
            return
        kind = content.get("type")
        try:
            if kind == "start":
                battle = await database_sync_to_async(services.battle_start)(
                    session_key=self.session_key, prompt=content.get("prompt"), client_ip=self.client_ip
                )
                turn = await database_sync_to_async(lambda: battle.turns.get(index=0))()
                regenerated = False
            elif kind == "continue":
                turn = await database_sync_to_async(services.battle_continue)(
                    battle_id=content.get("battle_id"), session_key=self.session_key, prompt=content.get("prompt")
                )
                regenerated = False
            elif kind == "regenerate":
                turn = await database_sync_to_async(services.turn_regenerate)(
                    battle_id=content.get("battle_id"), session_key=self.session_key
                )
                regenerated = True
            else:
                await self.send_json(events.error("Unknown message type."))
                return
        except services.BattleError as exc:
            await self.send_json(events.error(str(exc)))
            return
        await self.send_json(events.turn_started(str(turn.battle_id), turn.index, turn.prompt, regenerated=regenerated))
        # Run the stream as a task so the socket keeps reading (and can refuse overlapping requests).
        self.streaming = asyncio.ensure_future(turn_answer_both(turn_id=turn.pk, send=self.send_json))
