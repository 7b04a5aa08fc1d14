from django.urls import path

from ratings import views

app_name = "ratings"

urlpatterns = [
    path("leaderboard", views.leaderboard, name="leaderboard"),
    path("api/leaderboard", views.leaderboard_api, name="api"),
    path("api/leaderboard.csv", views.leaderboard_csv, name="csv"),
    path("leaderboard/plotly.min.js", views.plotly_js, name="plotly-js"),
]
