"""Ratings state: online Elo, running pair counts, and immutable leaderboard snapshots."""

from django.db import models

from inference.models import ArenaModel


class EloRating(models.Model):
    """Online Elo, updated vote by vote."""

    model = models.OneToOneField(ArenaModel, on_delete=models.CASCADE, related_name="elo")
    rating = models.FloatField(default=1000.0)
    votes = models.PositiveIntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.model}: {self.rating:.1f} ({self.votes} votes)"


class PairCount(models.Model):
    """Outcome counts per ordered (left, right) model pair, kept current as votes arrive."""

    model_a = models.ForeignKey(ArenaModel, on_delete=models.CASCADE, related_name="+")
    model_b = models.ForeignKey(ArenaModel, on_delete=models.CASCADE, related_name="+")
    a_wins = models.PositiveBigIntegerField(default=0)
    b_wins = models.PositiveBigIntegerField(default=0)
    ties = models.PositiveBigIntegerField(default=0)
    both_bad = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_a", "model_b"], name="unique_ordered_pair")]

    def __str__(self) -> str:
        return f"{self.model_a} vs {self.model_b}"


class LeaderboardSnapshot(models.Model):
    """One computed leaderboard. Never edited: a recompute adds a new row; the newest is served."""

    created = models.DateTimeField(auto_now_add=True, db_index=True)
    method = models.CharField(max_length=40)
    params = models.JSONField(default=dict)
    seed = models.IntegerField()
    data_cutoff = models.DateTimeField(null=True, help_text="Newest vote included.")
    vote_count = models.PositiveBigIntegerField()
    rows = models.JSONField(help_text="Per-model rows: name, rating, ci_lower, ci_upper, rank, votes, ...")
    style_rows = models.JSONField(default=dict, blank=True)
    extras = models.JSONField(default=dict, blank=True, help_text="Matrices, position and tie models.")
    compute_seconds = models.FloatField(default=0.0)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"snapshot #{self.pk} ({self.method}, {self.vote_count:,} battles)"


class ImportedLog(models.Model):
    """An outside battle log whose counts were added to PairCount; keyed by content so it is added once."""

    sha256 = models.CharField(max_length=64, unique=True)
    filename = models.CharField(max_length=500)
    format = models.CharField(max_length=20, help_text="clean_battle or pair_counts.")
    battle_count = models.PositiveBigIntegerField()
    model_count = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.battle_count:,} battles)"
