from django.apps import AppConfig


class RatingsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "ratings"

    def ready(self):
        # The seam from battles: each committed vote is handed to ratings here (see battles/signals.py).
        from battles.signals import vote_recorded
        from ratings.tasks import vote_rating_queue

        vote_recorded.connect(
            lambda sender, vote_id, **kwargs: vote_rating_queue(vote_id=vote_id),
            weak=False,
            dispatch_uid="ratings.vote_rating_queue",
        )
        from arena.metrics import register_database_collector
        from ratings.metrics import VoteFigures

        register_database_collector("votes", VoteFigures())
