from django.contrib import admin

from ratings.models import EloRating, ImportedLog, LeaderboardSnapshot, PairCount


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
