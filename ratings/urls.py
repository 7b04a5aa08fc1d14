from django.urls import path, register_converter

from ratings import views


class ModelNameConverter:
    """A model's name as a URL holds it: any text, slashes included (org/model), but no control character.
    PostgreSQL refuses a NUL in text, so /leaderboard/model/%00 was a 500 where it must be a 404; no model's
    name holds one (inference's checks refuse control characters)."""

    regex = r"[^\x00-\x1f\x7f]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ModelNameConverter, "model_name")

app_name = "ratings"

urlpatterns = [
    path("leaderboard", views.leaderboard, name="leaderboard"),
    path("api/leaderboard", views.leaderboard_api, name="api"),
    path("api/leaderboard.csv", views.leaderboard_csv, name="csv"),
    path("api/leaderboard/<int:snapshot_id>/pair_counts.json", views.snapshot_inputs, name="snapshot-inputs"),
    path("api/leaderboard/<int:snapshot_id>/arena_votes.json", views.snapshot_arena_votes, name="snapshot-arena-votes"),
    path("leaderboard/plotly.min.js", views.plotly_js, name="plotly-js"),
    path("leaderboard/about", views.about_page, name="about"),
    path("leaderboard/history", views.history_page, name="history"),
    # A model's name may hold a slash (org/model); reverse() quotes the rest.
    path("leaderboard/model/<model_name:name>", views.model_page, name="model"),
]
