"""The Celery app: JSON only, time limits from settings; beat runs the leaderboard recompute and the
sweep that rates votes whose task never ran."""

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
