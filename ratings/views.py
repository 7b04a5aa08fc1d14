"""The leaderboard page, its JSON and CSV, and the locally served plotly.js."""

import csv
from datetime import datetime
from pathlib import Path

import plotly
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ratings import charts, selectors

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
CSV_COLUMNS = ["rank", "name", "rating", "ci_lower", "ci_upper", "votes"]


def _payload(request) -> dict:
    """The payload for ?snapshot= and ?method=; raises SnapshotNotFound / ValueError on bad input."""
    raw = request.GET.get("snapshot") or None
    if raw is not None and not raw.isdigit():
        raise selectors.SnapshotNotFound(f"No leaderboard snapshot with id {raw!r}.")
    return selectors.leaderboard_payload(
        snapshot_id=int(raw) if raw is not None else None, method=request.GET.get("method") or None
    )


def _error(exc: Exception) -> JsonResponse:
    status = 404 if isinstance(exc, selectors.SnapshotNotFound) else 400
    return JsonResponse({"error": str(exc)}, status=status)


@require_GET
def leaderboard(request):
    try:
        payload = _payload(request)
    except (selectors.SnapshotNotFound, ValueError) as exc:
        raise Http404(str(exc)) from None
    context = {
        "payload": payload,
        "figures": charts.leaderboard_figures(payload),
        "snapshots": selectors.snapshot_choices(),
        "chosen_snapshot": request.GET.get("snapshot") or "",
        "snapshot_created": datetime.fromisoformat(payload["snapshot"]["created"]) if payload["snapshot"] else None,
        "query": request.GET.urlencode(),
    }
    return render(request, "ratings/leaderboard.html", context)


@require_GET
def leaderboard_api(request):
    try:
        return JsonResponse(_payload(request))
    except (selectors.SnapshotNotFound, ValueError) as exc:
        return _error(exc)


@require_GET
def leaderboard_csv(request):
    try:
        payload = _payload(request)
    except (selectors.SnapshotNotFound, ValueError) as exc:
        return _error(exc)
    snapshot = payload["snapshot"]
    filename = f"leaderboard-{snapshot['id']}.csv" if snapshot else "leaderboard-elo.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.DictWriter(response, CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(payload["models"])
    return response


@require_GET
def plotly_js(request):
    """plotly.min.js from the installed plotly package: no CDN, works offline."""
    response = FileResponse(open(PLOTLY_JS, "rb"), content_type="text/javascript")  # noqa: SIM115 - closed by the response
    response["Cache-Control"] = "public, max-age=86400"
    return response
