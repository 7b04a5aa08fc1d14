"""Battles: one prompt put to two anonymous models, their answers side by side, and the visitor's vote."""

import uuid

from django.db import models

from inference.models import ArenaModel, Endpoint


class Battle(models.Model):
    """Side A is shown on the left, side B on the right."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner_hash = models.CharField(
        max_length=64, db_index=True, help_text="Keyed hash of the visitor session that owns it (never the session)."
    )
    client_hash = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="Keyed hash of the visitor's IP address."
    )
    model_a = models.ForeignKey(ArenaModel, on_delete=models.PROTECT, related_name="+")
    model_b = models.ForeignKey(ArenaModel, on_delete=models.PROTECT, related_name="+")
    endpoint_a = models.ForeignKey(Endpoint, on_delete=models.SET_NULL, null=True, related_name="+")
    endpoint_b = models.ForeignKey(Endpoint, on_delete=models.SET_NULL, null=True, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    # While answers stream, the stream holds this battle (one stream per battle, across sockets and
    # processes): no vote, continue or regenerate until it ends. A lease, renewed while streaming, so a
    # process that dies mid-stream frees the battle within STREAM_LEASE_SECONDS.
    stream_id = models.CharField(max_length=32, blank=True)
    streaming_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"battle {self.id}"


class Turn(models.Model):
    """One prompt and the two answers to it. Regenerating a turn makes a new version of its answers."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    battle = models.ForeignKey(Battle, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveSmallIntegerField()
    # Which answers the visitor is looking at: 1, then one more per regeneration. A vote names it.
    version = models.PositiveSmallIntegerField(default=1)
    # When this version's answers began to stream (for how quickly a vote followed them).
    version_started = models.DateTimeField(auto_now_add=True, null=True)
    prompt = models.TextField()
    answer_a = models.TextField(blank=True)
    answer_b = models.TextField(blank=True)
    status_a = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    status_b = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    # {"ttft", "tokens", "total", "finish_reason", "error"} per side.
    timings_a = models.JSONField(default=dict, blank=True)
    timings_b = models.JSONField(default=dict, blank=True)
    # Why text the visitor saw in this turn was not blind ('' if all was), noted as soon as a stream shows it:
    # regenerating until an answer no longer names its model must not make the vote count, nor taking the
    # battle over before the stream that showed it could store its answers.
    earlier_leak = models.TextField(blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["battle", "index"]
        constraints = [models.UniqueConstraint(fields=["battle", "index"], name="unique_turn_index")]

    def __str__(self) -> str:
        return f"turn {self.index} of battle {self.battle_id}"


class Vote(models.Model):
    class Outcome(models.TextChoices):
        A = "a", "A is better"
        B = "b", "B is better"
        TIE = "tie", "Tie"
        BOTH_BAD = "bothbad", "Both are bad"

    battle = models.OneToOneField(Battle, on_delete=models.CASCADE, related_name="vote")
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    judge_hash = models.CharField(max_length=64, db_index=True, help_text="Keyed hash of the session; no raw id or IP.")
    # The last turn's version the visitor voted on (what was shown).
    turn_version = models.PositiveSmallIntegerField(default=1)
    # Snapshots at vote time, so the record stands even if the battle's turns change later.
    conversation_a = models.JSONField()
    conversation_b = models.JSONField()
    timings_a = models.JSONField()
    timings_b = models.JSONField()
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    # Set once the vote's rating task has handled it, so a task that runs twice counts it once.
    rated_at = models.DateTimeField(null=True, blank=True)
    # Non-empty when the vote is kept but not counted, e.g. an answer gave away which model wrote it.
    excluded_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["created"]
        # The votes still to rate, for the worker's sweep each minute and the scrape's rating lag: without it the
        # sweep walked the created index over every vote (8.3 ms at 300,000 votes on PostgreSQL; 0.5 with it).
        indexes = [models.Index(fields=["created"], condition=models.Q(rated_at__isnull=True), name="vote_unrated")]

    def __str__(self) -> str:
        return f"vote {self.outcome} on battle {self.battle_id}"
