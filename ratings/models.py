"""Ratings state: online Elo, running pair counts, and immutable leaderboard snapshots."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from battles.models import Vote
from inference.models import ArenaModel


class EloRating(models.Model):
    """Online Elo, updated vote by vote."""

    model = models.OneToOneField(ArenaModel, on_delete=models.CASCADE, related_name="elo")
    rating = models.FloatField(default=1000.0)
    votes = models.PositiveIntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.model}: {self.rating:.1f} ({self.votes} votes)"


# The labels of votes whose prompts were never seen (imported logs): undetermined language, no flags. They
# count on the overall and exclude-ties boards only.
UNLABELLED = "und:"


class PairCount(models.Model):
    """Outcome counts per ordered (left, right) model pair and labels key (the votes' prompt labels, e.g.
    "en:cm" for English coding and maths; see ratings/prompt_labels.py), kept current as votes arrive.
    Every category board is a sum of these rows, so a recompute reads O(pairs x label combinations)."""

    model_a = models.ForeignKey(ArenaModel, on_delete=models.CASCADE, related_name="+")
    model_b = models.ForeignKey(ArenaModel, on_delete=models.CASCADE, related_name="+")
    labels = models.CharField(max_length=16, default=UNLABELLED)
    a_wins = models.PositiveBigIntegerField(default=0)
    b_wins = models.PositiveBigIntegerField(default=0)
    ties = models.PositiveBigIntegerField(default=0)
    both_bad = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model_a", "model_b", "labels"], name="unique_ordered_pair_labels")
        ]

    def __str__(self) -> str:
        return f"{self.model_a} vs {self.model_b} [{self.labels}]"


class SnapshotInput(models.Model):
    """The exact labelled pair counts a snapshot was fitted on, in the download format, with their sha256.
    Snapshots fitted on the same counts share one row."""

    sha256 = models.CharField(max_length=64, unique=True)
    counts = models.JSONField(help_text='{"models", "X", "Y", "L"}: pairs, outcome counts, labels keys.')
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"inputs {self.sha256[:12]}"


class SnapshotArenaVotes(models.Model):
    """The arena votes a snapshot's style-controlled board and left-seat effect were fitted on, one row per
    vote with numbers only (the two models in their seats, the outcome, each side's style counts: no judge, no
    time, no text), in the download format, with their sha256. Snapshots fitted on the same votes share one."""

    sha256 = models.CharField(max_length=64, unique=True)
    votes = models.JSONField(help_text='{"models", "model_a", "model_b", "outcome", "style_a", "style_b"}.')
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"arena votes {self.sha256[:12]}"


class LeaderboardSnapshot(models.Model):
    """One computed leaderboard. Never edited: a recompute adds a new row (unless nothing changed); the
    newest is served; old ones thin out to one a day (ratings.services.snapshots_prune)."""

    created = models.DateTimeField(auto_now_add=True, db_index=True)
    method = models.CharField(max_length=40)
    params = models.JSONField(default=dict)
    seed = models.IntegerField()
    data_cutoff = models.DateTimeField(null=True, help_text="Newest vote included.")
    vote_count = models.PositiveBigIntegerField()
    rows = models.JSONField(help_text="Per-model rows: name, rating, ci_lower, ci_upper, rank, votes, ...")
    style_rows = models.JSONField(default=dict, blank=True)
    extras = models.JSONField(default=dict, blank=True, help_text="Matrices, position and tie models.")
    categories = models.JSONField(default=dict, blank=True, help_text="A board per category with enough votes.")
    inputs = models.ForeignKey(SnapshotInput, on_delete=models.PROTECT, null=True, related_name="snapshots")
    arena_votes = models.ForeignKey(
        SnapshotArenaVotes, on_delete=models.PROTECT, null=True, blank=True, related_name="snapshots"
    )
    # What the board depends on besides the counts (method, rounds, seed, anchor, ...), hashed with them:
    # a recompute whose fingerprint equals the newest snapshot's adds nothing.
    fingerprint = models.CharField(max_length=64, blank=True, db_index=True)
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


class LeaderboardPolicy(models.Model):
    """The arena's rules for the board and for drawing pairs, set by admins (one row)."""

    provisional_votes = models.PositiveIntegerField(
        default=100, help_text="A model's rating is marked provisional until it has this many votes."
    )
    hide_provisional = models.BooleanField(
        default=False, help_text="Leave provisional models off the public board (the API still lists them, marked)."
    )
    exploration_share = models.FloatField(
        default=0.1,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of battles drawn evenly over all pairs, whatever the plan says (0 to 1).",
    )
    boost_share = models.FloatField(
        default=0.25,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of battles given to models still under their target votes (0 to 1).",
    )
    top_k = models.PositiveSmallIntegerField(default=10, help_text="How many top models the plan works to separate.")
    duplicate_prompt_threshold = models.PositiveIntegerField(
        default=10,
        help_text="Computed at each recompute: votes on one prompt beyond this many are down-sampled "
        "(the top 0.1% most frequent prompts, at least 10).",
    )

    class Meta:
        verbose_name_plural = "leaderboard policy"

    def __str__(self) -> str:
        return "leaderboard policy"

    def clean(self):
        # The plan gives these shares first and the rest by need: together over 1 (0.8 with 0.25, or 25
        # typed for 25%) the planner refused every recompute, and no snapshot was made again.
        if self.exploration_share + self.boost_share > 1:
            raise ValidationError(
                f"The exploration and boost shares add up to {self.exploration_share + self.boost_share:g}; "
                "together they may be at most 1 (each a fraction: 0.1 for 10%)."
            )

    @classmethod
    def current(cls) -> LeaderboardPolicy:
        return cls.objects.get_or_create(pk=1)[0]


class RatedVote(models.Model):
    """How ratings took one vote: its pair and outcome, the style of both answers and the judge's timing
    (stored once, so a recompute never rereads conversations), and whether it is in the counts now."""

    vote = models.OneToOneField(Vote, on_delete=models.CASCADE, primary_key=True, related_name="rating")
    model_a = models.ForeignKey(ArenaModel, on_delete=models.CASCADE, related_name="+")
    model_b = models.ForeignKey(ArenaModel, on_delete=models.CASCADE, related_name="+")
    outcome = models.PositiveSmallIntegerField(help_text="Engine code: 0 A wins, 1 B wins, 2 tie, 3 both bad.")
    judge_hash = models.CharField(max_length=64, db_index=True)
    # The battle's address (keyed hash of the visitor's IPv4 address or IPv6 /64; "" when it had none):
    # the screen also judges every address over all the votes cast from it, whatever the sessions.
    client_hash = models.CharField(max_length=64, blank=True, db_index=True)
    voted_at = models.DateTimeField(db_index=True)
    # From the moment the last answers began to appear to the vote, and how long reading them takes.
    seconds_to_vote = models.FloatField(null=True)
    seconds_to_read = models.FloatField(null=True)
    tokens_a = models.PositiveIntegerField(default=0)
    headers_a = models.PositiveIntegerField(default=0)
    lists_a = models.PositiveIntegerField(default=0)
    bold_a = models.PositiveIntegerField(default=0)
    tokens_b = models.PositiveIntegerField(default=0)
    headers_b = models.PositiveIntegerField(default=0)
    lists_b = models.PositiveIntegerField(default=0)
    bold_b = models.PositiveIntegerField(default=0)
    labels = models.CharField(max_length=16, default=UNLABELLED)
    prompt_hash = models.CharField(max_length=64, blank=True, db_index=True)
    prompt_occurrence = models.PositiveIntegerField(default=1, help_text="This vote was the n-th on its prompt.")
    in_counts = models.BooleanField(default=True, db_index=True)
    left_out_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["voted_at", "vote_id"]

    def __str__(self) -> str:
        return f"rated vote {self.vote_id}" + ("" if self.in_counts else " (left out)")


class PromptCount(models.Model):
    """How many rated votes each normalised prompt has had (for down-sampling the most frequent ones); a vote
    rated while its judge was flagged is counted only if the flag is cleared."""

    prompt_hash = models.CharField(max_length=64, unique=True)
    votes = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"prompt {self.prompt_hash[:12]}: {self.votes}"


class JudgeFlag(models.Model):
    """A judge (hashed) whose votes looked anomalous: kept, but left out of the counts while flagged. A judge
    is a session (its votes' judge_hash) or an address (their client_hash: every session's votes from it)."""

    class State(models.TextChoices):
        FLAGGED = "flagged", "Flagged: votes left out"
        CLEARED = "cleared", "Cleared by an admin: votes counted"

    class Kind(models.TextChoices):
        SESSION = "session", "Session"
        ADDRESS = "address", "Address (all its sessions)"

    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.SESSION)
    judge_hash = models.CharField(max_length=64, help_text="The session's judge_hash, or the address's client_hash.")
    state = models.CharField(max_length=8, choices=State.choices, default=State.FLAGGED)
    reason = models.TextField()
    p_values = models.JSONField(default=dict, blank=True)
    votes = models.PositiveIntegerField(default=0, help_text="Votes the judge had when screened.")
    flagged_at = models.DateTimeField(auto_now_add=True)
    changed_at = models.DateTimeField(auto_now=True)
    changed_by = models.CharField(max_length=150, blank=True, help_text="The admin who cleared or flagged it.")

    class Meta:
        ordering = ["-flagged_at"]
        constraints = [models.UniqueConstraint(fields=["kind", "judge_hash"], name="unique_judge_flag")]

    def __str__(self) -> str:
        return f"{self.kind} {self.judge_hash[:12]} ({self.state})"


# How a rated vote's left_out_reason begins while a flag of each kind keeps it out of the counts.
FLAGGED_PREFIXES = {
    JudgeFlag.Kind.SESSION: "Judge flagged as anomalous: ",
    JudgeFlag.Kind.ADDRESS: "Address flagged as anomalous: ",
}


class RatingHistory(models.Model):
    """One model's board at one cutoff of a replayed battle log (`manage.py leaderboard_history`).

    Kept apart from LeaderboardSnapshot so that a replay of old battles can never become the board the
    site serves; a replay replaces every row of its source. Names are plain text: a replayed log may
    name models this arena never registered."""

    source = models.CharField(max_length=200, help_text="What was replayed, e.g. the log's file name.")
    cutoff = models.DateTimeField(help_text="Battles before this moment are in this board.")
    model_name = models.CharField(max_length=300, db_index=True)
    rating = models.FloatField()
    ci_lower = models.FloatField(null=True)
    ci_upper = models.FloatField(null=True)
    rank = models.PositiveIntegerField()
    votes = models.PositiveBigIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["source", "cutoff", "rank", "model_name"]
        verbose_name_plural = "rating history"
        constraints = [models.UniqueConstraint(fields=["source", "cutoff", "model_name"], name="unique_history_point")]

    def __str__(self) -> str:
        return f"{self.model_name} at {self.cutoff:%Y-%m-%d} ({self.source})"
