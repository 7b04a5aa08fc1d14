from django.contrib import admin

from arena.admin_site import RecordAdmin
from battles.models import Battle, Turn, Vote


class TurnInline(admin.TabularInline):
    model = Turn
    extra = 0
    can_delete = False
    fields = ["index", "version", "prompt", "answer_a", "answer_b", "status_a", "status_b", "timings_a", "timings_b"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Battle)
class BattleAdmin(RecordAdmin):
    list_display = ["id", "created"]
    inlines = [TurnInline]

    def get_list_display(self, request):
        # Which models fought is for superusers only: a staff member's own battle, still unvoted, is at the
        # top of this list.
        return ["id", "model_a", "model_b", "created"] if request.user.is_superuser else self.list_display

    def get_list_select_related(self, request):
        return ["model_a", "model_b"] if request.user.is_superuser else []

    def get_exclude(self, request, obj=None):
        return [] if request.user.is_superuser else ["model_a", "model_b", "endpoint_a", "endpoint_b"]


@admin.register(Vote)
class VoteAdmin(RecordAdmin):
    list_display = ["battle", "outcome", "judge_hash", "created", "rated_at"]
    list_filter = ["outcome"]
