"""Battles: one prompt put to two anonymous models, their answers side by side, and the visitor's vote."""

import uuid

from django.db import models

from inference.models import ArenaModel, Endpoint


class Battle(models.Model):
    """Side A is shown on the left, side B on the right."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session_key = models.CharField(max_length=64, db_index=True, help_text="The visitor session that owns it.")
    client_hash = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="HMAC of the visitor's IP address (for rate limits)."
    )
    model_a = models.ForeignKey(ArenaModel, on_delete=models.PROTECT, related_name="+")
    model_b = models.ForeignKey(ArenaModel, on_delete=models.PROTECT, related_name="+")
    endpoint_a = models.ForeignKey(Endpoint, on_delete=models.SET_NULL, null=True, related_name="+")
    endpoint_b = models.ForeignKey(Endpoint, on_delete=models.SET_NULL, null=True, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"battle {self.id}"


class Turn(models.Model):
    """One prompt and the two answers to it. Regenerating a turn clears and refills its answers."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    battle = models.ForeignKey(Battle, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveSmallIntegerField()
    prompt = models.TextField()
    answer_a = models.TextField(blank=True)
    answer_b = models.TextField(blank=True)
    status_a = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    status_b = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    # {"ttft", "tokens", "total", "finish_reason", "error"} per side.
    timings_a = models.JSONField(default=dict, blank=True)
    timings_b = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["battle", "index"]
        constraints = [models.UniqueConstraint(fields=["battle", "index"], name="unique_turn_index")]

    def __str__(self) -> str:
        return f"turn {self.index} of battle {self.battle_id}"


class VoteQuerySet(models.QuerySet):
    def counted(self):
        """Votes the ratings count: rated, and not excluded."""
        return self.filter(rated_at__isnull=False, excluded_reason="")


class Vote(models.Model):
    class Outcome(models.TextChoices):
        A = "a", "A is better"
        B = "b", "B is better"
        TIE = "tie", "Tie"
        BOTH_BAD = "bothbad", "Both are bad"

    battle = models.OneToOneField(Battle, on_delete=models.CASCADE, related_name="vote")
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    judge_hash = models.CharField(max_length=64, db_index=True, help_text="HMAC of the session; no raw id or IP.")
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

    objects = VoteQuerySet.as_manager()

    class Meta:
        ordering = ["created"]

    def __str__(self) -> str:
        return f"vote {self.outcome} on battle {self.battle_id}"
