from django.contrib import admin

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
class EloRatingAdmin(admin.ModelAdmin):
    list_display = ["model", "rating", "votes", "updated"]
    ordering = ["-rating"]
    readonly_fields = ["model", "rating", "votes", "updated"]


@admin.register(PairCount)
class PairCountAdmin(admin.ModelAdmin):
    list_display = ["model_a", "model_b", "a_wins", "b_wins", "ties", "both_bad"]
    list_select_related = ["model_a", "model_b"]
    search_fields = ["model_a__name", "model_b__name"]


@admin.register(LeaderboardSnapshot)
class LeaderboardSnapshotAdmin(admin.ModelAdmin):
    """Snapshots are immutable: viewable and deletable, never editable."""

    list_display = ["id", "created", "method", "seed", "vote_count", "compute_seconds"]
    exclude = ["rows", "style_rows", "extras"]
    readonly_fields = ["created", "method", "params", "seed", "data_cutoff", "vote_count", "compute_seconds"]

    def has_add_permission(self, request):
        return False


@admin.register(ImportedLog)
class ImportedLogAdmin(admin.ModelAdmin):
    list_display = ["filename", "format", "battle_count", "model_count", "created"]
    readonly_fields = ["sha256", "filename", "format", "battle_count", "model_count", "created"]

    def has_add_permission(self, request):
        return False


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
class RatedVoteAdmin(admin.ModelAdmin):
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
    search_fields = ["judge_hash", "client_hash"]
    readonly_fields = [f.name for f in RatedVote._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(LeaderboardPolicy)
class LeaderboardPolicyAdmin(admin.ModelAdmin):
    list_display = ["__str__", "provisional_votes", "hide_provisional", "exploration_share", "boost_share", "top_k"]

    def has_add_permission(self, request):
        return not LeaderboardPolicy.objects.exists()
