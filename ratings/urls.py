from django.urls import path

from ratings import views

app_name = "ratings"

urlpatterns = [
    path("leaderboard", views.leaderboard, name="leaderboard"),
    path("api/leaderboard", views.leaderboard_api, name="api"),
    path("api/leaderboard.csv", views.leaderboard_csv, name="csv"),
    path("api/leaderboard/<int:snapshot_id>/pair_counts.json", views.snapshot_inputs, name="snapshot-inputs"),
    path("leaderboard/plotly.min.js", views.plotly_js, name="plotly-js"),
    path("leaderboard/about", views.about_page, name="about"),
    path("leaderboard/history", views.history_page, name="history"),
    # path: a model's name may hold a slash (org/model); reverse() quotes the rest.
    path("leaderboard/model/<path:name>", views.model_page, name="model"),
]
