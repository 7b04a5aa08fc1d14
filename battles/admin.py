from django.contrib import admin

from battles.models import Battle, Turn, Vote


class TurnInline(admin.TabularInline):
    model = Turn
    extra = 0
    readonly_fields = [
        "index",
        "version",
        "prompt",
        "answer_a",
        "answer_b",
        "status_a",
        "status_b",
        "timings_a",
        "timings_b",
    ]


@admin.register(Battle)
class BattleAdmin(admin.ModelAdmin):
    list_display = ["id", "model_a", "model_b", "created"]
    readonly_fields = ["owner_hash", "client_hash", "model_a", "model_b", "endpoint_a", "endpoint_b"]
    inlines = [TurnInline]


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ["battle", "outcome", "judge_hash", "created", "rated_at"]
    list_filter = ["outcome"]
    readonly_fields = [f.name for f in Vote._meta.fields]
