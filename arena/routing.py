from django.urls import path

from battles.consumers import BattleConsumer
from ratings.consumers import LeaderboardConsumer

websocket_urlpatterns = [
    path("ws/battle/", BattleConsumer.as_asgi()),
    path("ws/leaderboard/", LeaderboardConsumer.as_asgi()),
]
