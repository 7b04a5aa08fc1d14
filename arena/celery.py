"""The Celery app: JSON only, time limits from settings. Beat runs the leaderboard recompute, the sweep
that rates votes whose task never ran, the endpoint health probe and the clearing of expired sessions."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")

app = Celery("arena")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def schedule_periodic_tasks(sender, **kwargs):
    """Each periodic task expires after its own interval (settings refuse an interval under a second): while
    the worker is down, beat goes on queueing them, and without expiry an hour's outage left ~240 probes and 60
    sweeps to run first on recovery, ahead of the votes waiting to be rated. The next run comes anyway."""
    from django.conf import settings

    periodic = [
        (settings.LEADERBOARD_RECOMPUTE_INTERVAL, "ratings.tasks.leaderboard_recompute", "leaderboard recompute"),
        (60.0, "ratings.tasks.votes_rate_pending", "rate pending votes"),
        (settings.HEALTH_PROBE_INTERVAL, "inference.tasks.endpoints_probe", "probe endpoints"),
        (3600.0, "battles.tasks.sessions_clear_expired", "clear sessions"),
        (settings.JUDGE_SCREEN_INTERVAL, "ratings.tasks.judges_screen", "screen judges"),
    ]
    for interval, task, name in periodic:
        sender.add_periodic_task(interval, sender.signature(task), name=name, expires=interval)
