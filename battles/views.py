"""The arena page and the small JSON API around a battle."""

import json

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from battles import services
from battles.selectors import battle_state


def _session_key(request: HttpRequest) -> str:
    if not request.session.session_key:
        request.session.save()
    return request.session.session_key


@require_GET
@ensure_csrf_cookie
def arena(request):
    _session_key(request)  # the battle socket identifies its owner by this session
    return render(request, "battles/arena.html", {"prompt_max_chars": settings.PROMPT_MAX_CHARS})


@require_POST
def vote(request, battle_id):
    try:
        body = json.loads(request.body or b"{}")
    except json.JSONDecodeError:
        return JsonResponse({"error": "The request body must be JSON."}, status=400)
    try:
        recorded = services.vote_record(
            battle_id=battle_id, session_key=request.session.session_key or "", outcome=body.get("outcome")
        )
    except services.BattleError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(battle_state(recorded.battle))


@require_GET
def battle_detail(request, battle_id):
    try:
        battle = services.battle_owned(battle_id=battle_id, session_key=request.session.session_key or "")
    except services.BattleError as exc:
        return JsonResponse({"error": str(exc)}, status=404)
    return JsonResponse(battle_state(battle))
