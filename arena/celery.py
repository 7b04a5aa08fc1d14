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
    from django.conf import settings

    sender.add_periodic_task(
        settings.LEADERBOARD_RECOMPUTE_INTERVAL,
        sender.signature("ratings.tasks.leaderboard_recompute"),
        name="leaderboard recompute",
    )
    sender.add_periodic_task(60.0, sender.signature("ratings.tasks.votes_rate_pending"), name="rate pending votes")
    sender.add_periodic_task(
        settings.HEALTH_PROBE_INTERVAL, sender.signature("inference.tasks.endpoints_probe"), name="probe endpoints"
    )
    sender.add_periodic_task(3600.0, sender.signature("battles.tasks.sessions_clear_expired"), name="clear sessions")
    sender.add_periodic_task(
        settings.JUDGE_SCREEN_INTERVAL, sender.signature("ratings.tasks.judges_screen"), name="screen judges"
    )
