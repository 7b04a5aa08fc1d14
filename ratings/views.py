"""The leaderboard page, its JSON and CSV, the model, history and about pages, and the locally served plotly.js."""

import csv
import hashlib
import re
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

import plotly
from django.core.cache import cache
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import condition, require_GET

from ratings import charts, selectors
from ratings.engine.categories import OVERALL, canonical_json

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
# "group": ratings compare only within one (1 = most battles); an empty rating is a model not rated yet, "note" says why.
# "snapshot_id" and "category" say which board a row is from, once the file is away from its URL (empty
# snapshot_id: the online Elo, no snapshot).
CSV_COLUMNS = ["rank", "name", "rating", "ci_lower", "ci_upper", "votes", "provisional", "retired", "group", "note",
               "snapshot_id", "category"]  # fmt: skip


def _payload(request, *, public: bool = False) -> dict:
    """The payload for ?snapshot=, ?method= and ?category=; raises SnapshotNotFound / ValueError on bad input."""
    raw = request.GET.get("snapshot") or None
    if raw is not None and not _ascii_digits(raw):
        raise selectors.SnapshotNotFound(f"No leaderboard snapshot with id {raw!r}.")
    return selectors.leaderboard_payload(
        snapshot_id=int(raw) if raw is not None else None, method=request.GET.get("method") or None,
        category=request.GET.get("category") or None, public=public,
    )  # fmt: skip


def _version(request) -> selectors.BoardVersion:
    """The board's version, read once per request (the conditional check and the view both need it)."""
    if not hasattr(request, "_board_version"):
        request._board_version = selectors.board_version()
    return request._board_version


# The query parameters a board page reads. Only these name a version of a page: with the whole URL in the
# key, every made-up parameter (?x=1, ?x=2, ...) built the page again and kept one more copy of it.
BOARD_PARAMETERS = ("snapshot", "method", "category")


def _ascii_digits(value: str) -> bool:
    """str.isdigit() is true of other scripts' digits too ("١"), which int() reads: each spelling of one id
    was a board of its own in the cache."""
    return value.isascii() and value.isdigit()


def _board_parameters(request) -> dict[str, str]:
    """The board parameters of this request, each board named one way: a snapshot id as its number ("007" is
    "7"), the defaults (bradley-terry, overall) left out, and no snapshot with the online Elo (which reads
    none: ?method=elo&snapshot=1, 2, 3, ... were each a copy of one page). Anything else in the URL is
    ignored, and every value that names no board is refused (404/400) and never cached, so the pages cached
    are bounded by the boards that exist."""
    values = {name: request.GET.get(name) or "" for name in BOARD_PARAMETERS}
    if _ascii_digits(values["snapshot"]):
        values["snapshot"] = str(int(values["snapshot"]))
    if values["method"] == selectors.METHOD_BT:
        values["method"] = ""
    if values["method"] == selectors.METHOD_ELO:
        values["snapshot"] = ""
    if values["category"] == OVERALL:
        values["category"] = ""
    return {name: value for name, value in values.items() if value}


def _board_query(request) -> str:
    """The board parameters of this request, in one order (see _board_parameters)."""
    return _encoded(_board_parameters(request))


def _encoded(parameters: dict) -> str:
    return urlencode([(name, parameters[name]) for name in BOARD_PARAMETERS if name in parameters])


def _etag(request, *args, **kwargs) -> str:
    if not hasattr(request, "_etag"):
        request._etag = _version(request).etag(f"{request.path}?{_board_query(request)}")
    return request._etag


def _marked_etag(marks):
    """An ETag function for a page that shows more than the board, and reads no board parameter: its version
    and `marks(**url kwargs)`. Its query is left out: every made-up ?category= on such a page answered 200 and
    kept one more copy of it (the history page is megabytes on a large arena)."""

    def etag(request, *args, **kwargs) -> str:
        if not hasattr(request, "_etag"):
            request._etag = _version(request).etag(f"{request.path}|{marks(**kwargs)}")
        return request._etag

    return etag


# A snapshot never changes, so what is derived from it alone is kept for as long as the cache keeps it.
DERIVED_TIMEOUT = 24 * 3600


def _board_plots(snapshot_id: int, category: str) -> dict | None:
    return cache.get_or_set(
        f"ratings:plots:{snapshot_id}:{category}",
        lambda: selectors.board_plot_data(snapshot_id, category),
        DERIVED_TIMEOUT,
    )


def _snapshot_history(request, name: str | None = None):
    """Every model's series over the snapshots (or `name`'s alone), read once per newest snapshot: it reads
    every stored board, and all models' series together are megabytes on a large arena, too much to load
    for one model's page."""
    key = f"ratings:history:{_version(request).snapshot_id}"
    # Hashed: a model's name may hold spaces, which some cache backends refuse in keys.
    one_key = f"{key}:{hashlib.sha256(name.encode()).hexdigest()[:24]}" if name is not None else None
    if one_key is not None and (one := cache.get(one_key)) is not None:
        return one["series"]
    everything = cache.get(key)
    if everything is None:
        everything = selectors.snapshot_history()
        cache.set(key, everything, DERIVED_TIMEOUT)
    if one_key is None:
        return everything
    cache.set(one_key, {"series": everything.get(name)}, DERIVED_TIMEOUT)  # wrapped: "no series" is cached too
    return everything.get(name)


# Between recomputes and votes, a read costs two aggregate queries: an unchanged board answers 304, and
# a changed one is built once per process and version, then served from the cache. An ETag only, no
# Last-Modified: what a board shows does not change at one time a second-resolution stamp could give (an admin
# retiring a model or changing the policy, a rating committed after a later-stamped one, two votes within a
# second), so a client asking If-Modified-Since alone (curl -z, wget -N) was told 304 over a changed board.
conditional = condition(etag_func=_etag)


def _cached(request, build) -> HttpResponse:
    """The response for this version of the page (the ETag the conditional check computed), built once.
    `no-cache`: kept by a browser, but asked about each time (a 304 costs nothing), never shown stale by its
    own guess at freshness."""
    key = f"ratings:{request._etag if hasattr(request, '_etag') else _etag(request)}"
    response = cache.get(key)
    if response is None:
        response = build()
        if response.status_code == 200:
            response["Cache-Control"] = "no-cache"
            cache.set(key, response, timeout=600)
    return response


def _error(exc: Exception) -> JsonResponse:
    status = 404 if isinstance(exc, selectors.SnapshotNotFound) else 400
    return JsonResponse({"error": str(exc)}, status=status)


@require_GET
@conditional
def leaderboard(request):
    return _cached(request, lambda: _leaderboard_page(request))


def _leaderboard_page(request):
    try:
        payload = _payload(request, public=True)
    except selectors.CategoryNotInSnapshot as exc:
        if not request.GET.get("snapshot"):
            raise Http404(str(exc)) from None
        # An older snapshot picked on a category's tab, made before that category had enough votes: its overall
        # board (the picker keeps the tab, and answered 404 here).
        parameters = {name: value for name, value in _board_parameters(request).items() if name != "category"}
        return HttpResponseRedirect(f"{request.path}?{urlencode(parameters)}")
    except (selectors.SnapshotNotFound, ValueError) as exc:
        raise Http404(str(exc)) from None
    snapshot = payload["snapshot"]
    plots = _board_plots(snapshot["id"], payload["category"]) if snapshot else None
    figures = charts.leaderboard_figures(payload, plots)
    context = {
        "payload": payload,
        "figures": figures,
        "tables": charts.figure_tables(figures),
        "snapshots": selectors.snapshot_choices(),
        # As a number: "?snapshot=007" is cached as snapshot 7's page, and served for "?snapshot=7" too.
        "chosen_snapshot": str(snapshot["id"]) if snapshot and request.GET.get("snapshot") else "",
        "snapshot_created": datetime.fromisoformat(payload["snapshot"]["created"]) if payload["snapshot"] else None,
        "download_query": _download_query(request, snapshot),
        # The picker names a snapshot only: the board's other parameters go with it (a category tab stays).
        "picker_keeps": [(name, value) for name, value in _board_parameters(request).items() if name != "snapshot"],
    }
    return render(request, "ratings/leaderboard.html", context)


def _download_query(request, snapshot: dict | None) -> str:
    """The page's own parameters with its snapshot named: a download from it is the board shown, not one
    recomputed since the page was loaded (as "Newest" would be)."""
    parameters = _board_parameters(request)
    if snapshot is not None:
        parameters["snapshot"] = str(snapshot["id"])
    return _encoded(parameters)


@require_GET
@conditional
def leaderboard_api(request):
    def build():
        try:
            return JsonResponse(_payload(request))
        except (selectors.SnapshotNotFound, ValueError) as exc:
            return _error(exc)

    return _cached(request, build)


@require_GET
@conditional
def leaderboard_csv(request):
    return _cached(request, lambda: _leaderboard_csv(request))


def _leaderboard_csv(request):
    try:
        payload = _payload(request)
    except (selectors.SnapshotNotFound, ValueError) as exc:
        return _error(exc)
    snapshot, category = payload["snapshot"], payload["category"]
    # Each board its own file name ("language:en" as language-en: a colon is refused in Windows file names).
    board = "" if category == "overall" else "-" + re.sub(r"[^A-Za-z0-9_-]+", "-", category)
    filename = f"leaderboard-{snapshot['id']}{board}.csv" if snapshot else f"leaderboard-elo{board}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.DictWriter(response, CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    which = {"snapshot_id": snapshot["id"] if snapshot else "", "category": category}
    writer.writerows({**row, **which} for row in payload["models"])
    return response


@require_GET
@condition(etag_func=_marked_etag(selectors.model_marks))
def model_page(request, name: str):
    return _cached(request, lambda: _model_page(request, name))


def _model_page(request, name: str):
    try:
        profile = selectors.model_profile(name)
    except selectors.ModelNotFound as exc:
        raise Http404(str(exc)) from None
    replays = {source: series[name] for source, series in selectors.replayed_history(name).items()}
    figures = charts.model_figures(name, snapshots=_snapshot_history(request, name), replays=replays)
    context = {"profile": profile, "figures": figures, "tables": charts.figure_tables(figures)}
    return render(request, "ratings/model.html", context)


@require_GET
@condition(etag_func=_marked_etag(selectors.history_stamp))
def history_page(request):
    return _cached(request, lambda: _history_page(request))


def _history_page(request):
    snapshots, replays = _snapshot_history(request), selectors.replayed_history()
    sources = [
        {"source": source, "models": len(series), "first": min(p["time"][0] for p in series.values()),
         "last": max(p["time"][-1] for p in series.values())}
        for source, series in sorted(replays.items())
    ]  # fmt: skip
    figures = charts.history_figures(snapshots, replays)
    context = {
        "figures": figures,
        "tables": charts.figure_tables(figures),
        "sources": sources,
    }
    return render(request, "ratings/history.html", context)


@require_GET
def about_page(request):
    """Not cached: it shows the policy and the votes left out, which change without a new board version; it
    reads one snapshot and a few counts."""
    return render(request, "ratings/about.html", {"about": selectors.about_payload()})


@require_GET
def plotly_js(request):
    """plotly.min.js from the installed plotly package: no CDN, works offline."""
    response = FileResponse(open(PLOTLY_JS, "rb"), content_type="text/javascript")  # noqa: SIM115 - closed by the response
    response["Cache-Control"] = "public, max-age=86400"
    return response


def _download_etag(what: str):
    """The ETag of a snapshot's download, its sha256, read alone: a client that has it is answered 304 without
    the stored JSON (megabytes, for arena votes) being read, parsed and written out again."""

    def etag(request, snapshot_id: int) -> str | None:
        return selectors.snapshot_download_sha256(snapshot_id, what)

    return etag


@require_GET
@condition(etag_func=_download_etag("inputs"))
def snapshot_inputs(request, snapshot_id: int):
    """The exact pair counts a snapshot was fitted on, with their sha256 (also in the snapshot's metadata)."""
    return _snapshot_download(snapshot_id, selectors.snapshot_inputs, "pair-counts")


@require_GET
@condition(etag_func=_download_etag("arena_votes"))
def snapshot_arena_votes(request, snapshot_id: int):
    """The arena votes a snapshot's style board and left-seat effect were fitted on, with their sha256."""
    return _snapshot_download(snapshot_id, selectors.snapshot_arena_votes, "arena-votes")


def _snapshot_download(snapshot_id: int, read, name: str) -> HttpResponse:
    try:
        data, sha256 = read(snapshot_id)
    except selectors.SnapshotNotFound as exc:
        return _error(exc)
    response = HttpResponse(canonical_json(data), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="snapshot-{snapshot_id}-{name}.json"'
    response["X-Content-SHA256"] = sha256
    response["Cache-Control"] = "public, max-age=31536000, immutable"  # a snapshot's inputs never change
    return response
