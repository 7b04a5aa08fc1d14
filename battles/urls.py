from django.urls import path

from battles import views

app_name = "battles"

urlpatterns = [
    path("", views.arena, name="arena"),
    path("api/session", views.session, name="session"),
    path("api/battles/<uuid:battle_id>", views.battle_detail, name="battle-detail"),
    path("api/battles/<uuid:battle_id>/vote", views.vote, name="vote"),
]
