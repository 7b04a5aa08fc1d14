"""The one seam through which battles tells other apps about votes.

`vote_recorded` is sent once a vote's transaction has committed, with `vote_id`. Ratings listens
(`ratings/apps.py`) and queues the vote's rating; battles never imports ratings.
"""

from django.dispatch import Signal

vote_recorded = Signal()
