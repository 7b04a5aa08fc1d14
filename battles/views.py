"""The arena page and the small JSON API around a battle."""

import json

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from battles import services
from battles.selectors import battle_state, battle_turns
from battles.visitors import SessionRefused, session_issue, session_key_issued, session_recently_issued


def _visitor(request: HttpRequest) -> services.Visitor:
    """The visitor behind a request: its session only if the arena issued it (else nobody). Read as the
    battle socket reads it (the session store at most every few minutes), not through request.session."""
    key = request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")
    issued = bool(key) and (session_recently_issued(key) or session_key_issued(key))
    return services.Visitor.of(session_key=key if issued else "", ip=request.META.get("REMOTE_ADDR", ""))


def _json_object(request: HttpRequest) -> dict | JsonResponse:
    """The request body as a JSON object, or the 400 response to send instead."""
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):  # not JSON or UTF-8, nested past json's depth, an integer too long
        return JsonResponse({"error": "The request body must be JSON."}, status=400)
    if not isinstance(body, dict):
        return JsonResponse({"error": "The request body must be a JSON object."}, status=400)
    return body


@require_GET
@ensure_csrf_cookie
def arena(request):
    # No session here: one is issued only when the visitor starts a battle (POST /api/session).
    return render(request, "battles/arena.html", {"prompt_max_chars": settings.PROMPT_MAX_CHARS})


@require_POST
def session(request):
    """Issue the visitor a session (the battle socket identifies its owner by it); idempotent."""
    try:
        session_issue(request.session, address=services.client_hash(request.META.get("REMOTE_ADDR", "")))
    except SessionRefused as exc:
        return JsonResponse({"error": str(exc)}, status=429)
    return JsonResponse({"ok": True})


@require_POST
def vote(request, battle_id):
    body = _json_object(request)
    if isinstance(body, JsonResponse):
        return body
    try:
        revealed = services.vote_record_revealed(
            battle_id=battle_id, visitor=_visitor(request), outcome=body.get("outcome"),
            turn=body.get("turn"), version=body.get("version"),
        )  # fmt: skip
    except services.BattleError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(revealed)


@require_GET
def battle_detail(request, battle_id):
    try:
        battle = services.battle_owned(battle_id=battle_id, visitor=_visitor(request))
    except services.BattleError as exc:
        return JsonResponse({"error": str(exc)}, status=404)
    turns = battle_turns(battle)  # read once for both
    state = battle_state(battle, turns=turns, rendered=True)
    if not state["voted"]:
        # What the page said as the answers streamed (a name, a maker, an identity question: never which
        # model), for a page restoring the battle after a reload: its vote will not count.
        state["not_blind"] = services.vote_exclusion_reason(battle, turns=turns)
    return JsonResponse(state)
