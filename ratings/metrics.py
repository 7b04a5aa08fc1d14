"""The ratings' figures for /metrics (arena/metrics.py), read from the database at each scrape."""

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from ratings import selectors


class VoteFigures:
    """Votes by state and the age of the oldest vote waiting for its rating."""

    def collect(self):
        figures = selectors.vote_figures()
        votes = GaugeMetricFamily(
            "arena_votes",
            "Votes stored, by state: counted in the ratings, left out after rating (a flagged judge, a down-sampled "
            "prompt), excluded as not blind, waiting to be rated; and their total.",
            labels=["state"],
        )
        for state in ("total", "counted", "left_out", "excluded", "unrated"):
            votes.add_metric([state], figures[state])
        yield votes
        oldest = figures["oldest_unrated"]
        yield GaugeMetricFamily(
            "arena_rating_lag_seconds",
            "Age of the oldest vote not yet rated (0 when none waits).",
            value=(timezone.now() - oldest).total_seconds() if oldest else 0.0,
        )
