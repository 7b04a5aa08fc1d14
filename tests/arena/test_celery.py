"""The beat schedule: what runs periodically, and that a backlog left by a stopped worker expires."""

from arena.celery import app


def test_every_periodic_task_expires_after_its_own_interval():
    """With the worker down, beat goes on queueing: without an expiry an hour's outage left hundreds of probes
    and sweeps to run first on recovery, ahead of the votes waiting to be rated."""
    app.finalize()  # beat's schedule is filled in once the app is finalized (arena/celery.py)
    schedule = app.conf.beat_schedule
    assert {"leaderboard recompute", "rate pending votes", "probe endpoints", "clear sessions",
            "screen judges"} <= schedule.keys()  # fmt: skip
    for name, entry in schedule.items():
        assert entry["options"].get("expires") == entry["schedule"], name
