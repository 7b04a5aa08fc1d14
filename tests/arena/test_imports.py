"""Imports run one way between apps: ratings -> battles -> inference (and each may use arena's base).

Two checks: every app's entry modules import cleanly in a fresh interpreter in both orders (a circle
shows up as an ImportError in one of them), and no module, not even inside a function, imports from an
app above its own (a function-level import is how a circle hides).
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Lower apps first: each may import from the apps before it, never from those after it.
APP_ORDER = ["inference", "battles", "ratings"]
ENTRY_MODULES = {
    "inference": ["models", "services", "client", "launch", "admin"],
    "battles": ["models", "services", "selectors", "streaming", "consumers", "views", "admin"],
    "ratings": ["models", "services", "selectors", "tasks", "views", "consumers", "charts", "admin"],
}
PROJECT_MODULES = ["arena.asgi", "arena.celery", "arena.urls"]


def _import_in_fresh_interpreter(modules: list[str]) -> subprocess.CompletedProcess:
    # Each module is imported before django.setup() where possible would fail for models, so set up
    # Django first (as every entry point does), then import the modules in the given order.
    code = "import django; django.setup()\n" + "".join(f"import {name}\n" for name in modules)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "arena.settings"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("order", ["lower apps first", "higher apps first"])
def test_every_apps_entry_modules_import_in_a_fresh_interpreter(order):
    apps = APP_ORDER if order == "lower apps first" else APP_ORDER[::-1]
    modules = [f"{app}.{name}" for app in apps for name in ENTRY_MODULES[app]]
    modules = modules + PROJECT_MODULES if order == "lower apps first" else PROJECT_MODULES + modules
    result = _import_in_fresh_interpreter(modules)
    assert result.returncode == 0, result.stderr[-3000:]


def _imported_apps(path: Path) -> set[tuple[str, int]]:
    """(top-level package, line) of every import in the file, module-level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def test_no_module_imports_from_an_app_above_its_own():
    upward = []
    for rank, app in enumerate(APP_ORDER):
        higher = set(APP_ORDER[rank + 1 :])
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for imported, line in _imported_apps(path):
                if imported in higher:
                    upward.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    assert upward == [], "imports that run up between apps:\n" + "\n".join(sorted(upward))


# arena is the base every app may use; only its wiring modules name the apps (the URL and socket routes, the
# ASGI application, and the supervisor, which starts every program, the model servers among them).
ARENA_WIRING = {"urls.py", "routing.py", "asgi.py", "supervisor.py"}


def test_the_base_imports_no_app_outside_its_wiring():
    """arena/metrics.py read the votes through battles' models, a circle (battles reports to arena.metrics)
    that the check above could not see: the apps now register their figures with it (ratings/apps.py)."""
    upward = [
        f"{path.relative_to(ROOT)}:{line} imports {imported}"
        for path in sorted((ROOT / "arena").glob("*.py"))
        if path.name not in ARENA_WIRING
        for imported, line in _imported_apps(path)
        if imported in APP_ORDER
    ]
    assert upward == []


def test_the_statistics_engine_imports_no_django():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted((ROOT / "ratings" / "engine").rglob("*.py"))
        for imported, line in _imported_apps(path)
        if imported in {"django", "channels", "celery", "battles", "inference", "arena"}
    ]
    assert offenders == []
