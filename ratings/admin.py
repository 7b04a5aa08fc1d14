from django.contrib import admin

from arena.admin_site import RecordAdmin
from ratings import services
from ratings.models import (
    EloRating,
    ImportedLog,
    JudgeFlag,
    LeaderboardPolicy,
    LeaderboardSnapshot,
    PairCount,
    RatedVote,
)


@admin.register(EloRating)
class EloRatingAdmin(RecordAdmin):
    list_display = ["model", "rating", "votes", "updated"]
    list_select_related = ["model"]
    ordering = ["-rating"]


@admin.register(PairCount)
class PairCountAdmin(RecordAdmin):
    list_display = ["model_a", "model_b", "labels", "a_wins", "b_wins", "ties", "both_bad"]
    list_select_related = ["model_a", "model_b"]
    search_fields = ["model_a__name", "model_b__name"]


@admin.register(LeaderboardSnapshot)
class LeaderboardSnapshotAdmin(RecordAdmin):
    """Snapshots are what the site publishes: shown, never edited here (old ones are thinned out by the
    worker, snapshots_prune). Their boards and downloads (megabytes at a million votes) are never loaded."""

    list_display = ["id", "created", "method", "seed", "vote_count", "compute_seconds"]
    fields = ["created", "method", "params", "seed", "data_cutoff", "vote_count", "compute_seconds", "fingerprint"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("rows", "style_rows", "extras", "categories")


@admin.register(ImportedLog)
class ImportedLogAdmin(RecordAdmin):
    list_display = ["filename", "format", "battle_count", "model_count", "created"]


@admin.register(JudgeFlag)
class JudgeFlagAdmin(admin.ModelAdmin):
    """Judges whose votes looked anomalous, with the reason: a session, or an address (every session's votes
    from it). Clearing one puts its votes back in the counts, but for those the other kind of flag still holds
    (and the screen leaves it alone); flagging takes them out."""

    list_display = ["kind", "judge_hash", "state", "votes", "reason", "flagged_at", "changed_by"]
    list_filter = ["kind", "state"]
    search_fields = ["judge_hash", "reason"]
    readonly_fields = [
        "kind", "judge_hash", "state", "reason", "p_values", "votes", "flagged_at", "changed_at", "changed_by",
    ]  # fmt: skip
    actions = ["clear", "flag_again"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # A deleted flag undid itself: a cleared judge was flagged again at the next screen, and a flagged
        # one's votes stayed out with no flag left to clear them from. Clear instead.
        return False

    @admin.action(description="Clear: count these judges' votes again")
    def clear(self, request, queryset):
        for flag in queryset:
            services.judge_clear(kind=flag.kind, judge_hash=flag.judge_hash, by=request.user.get_username())
        self.message_user(request, f"{queryset.count()} judge(s) cleared; their votes count from the next snapshot.")

    @admin.action(description="Flag: leave these judges' votes out")
    def flag_again(self, request, queryset):
        for flag in queryset:
            services.judge_flag(kind=flag.kind, judge_hash=flag.judge_hash, reason=flag.reason,
                                p_values=flag.p_values, votes=flag.votes, by=request.user.get_username())  # fmt: skip
        self.message_user(request, f"{queryset.count()} judge(s) flagged; their votes are left out.")


@admin.register(RatedVote)
class RatedVoteAdmin(RecordAdmin):
    list_display = [
        "vote_id",
        "model_a",
        "model_b",
        "outcome",
        "judge_hash",
        "voted_at",
        "in_counts",
        "left_out_reason",
    ]
    list_filter = ["in_counts"]
    list_select_related = ["model_a", "model_b"]
    search_fields = ["=judge_hash", "=client_hash"]  # exact: the indexes serve it, at a million votes too


@admin.register(LeaderboardPolicy)
class LeaderboardPolicyAdmin(admin.ModelAdmin):
    list_display = ["__str__", "provisional_votes", "hide_provisional", "exploration_share", "boost_share", "top_k"]
    readonly_fields = ["duplicate_prompt_threshold"]  # each recompute sets it from the prompts' counts

    def has_add_permission(self, request):
        return not LeaderboardPolicy.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False  # the arena reads row 1 only: a deleted one came back with the defaults
