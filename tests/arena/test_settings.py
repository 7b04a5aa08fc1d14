"""Settings read from the environment: typos are refused, lists are tidied."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def settings_in_a_fresh_interpreter(tmp_path, **env) -> subprocess.CompletedProcess:
    code = "from django.conf import settings; print(settings.DEBUG, settings.ALLOWED_HOSTS, settings.SESSION_COOKIE_SECURE)"
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "arena.settings", "ARENA_VAR_DIR": str(tmp_path), **env}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True)


@pytest.mark.parametrize("value, expected", [("1", "True"), ("yes", "True"), (" On ", "True"), ("0", "False"),
                                             ("false", "False"), ("", "False")])  # fmt: skip
def test_yes_no_settings_read_the_usual_words(tmp_path, value, expected):
    result = settings_in_a_fresh_interpreter(tmp_path, DEBUG=value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == expected


def test_a_yes_no_setting_with_a_typo_stops_the_start_with_a_clear_error(tmp_path):
    result = settings_in_a_fresh_interpreter(tmp_path, SECURE_COOKIES="ture")
    assert result.returncode != 0
    assert "SECURE_COOKIES='ture' is not a yes/no value" in result.stderr


def test_host_lists_are_stripped_of_spaces_and_empty_items(tmp_path):
    result = settings_in_a_fresh_interpreter(tmp_path, ALLOWED_HOSTS=" arena.example.org , localhost,, ")
    assert result.returncode == 0, result.stderr
    assert "['arena.example.org', 'localhost']" in result.stdout


def test_secure_cookies_turn_on_hsts_secure_cookies_and_the_proxys_scheme_header(tmp_path):
    code = (
        "from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0, s.SECURE_PROXY_SSL_HEADER)"
    )
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "arena.settings", "ARENA_VAR_DIR": str(tmp_path),
                   "SECURE_COOKIES": "1"}  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True)
    assert result.stdout.split() == ["True", "True", "True", "('HTTP_X_FORWARDED_PROTO',", "'https')"], result.stderr


def test_keys_are_generated_owner_only_in_an_owner_only_var_directory(tmp_path):
    var = tmp_path / "var"
    result = settings_in_a_fresh_interpreter(var)
    assert result.returncode == 0, result.stderr
    assert oct(var.stat().st_mode & 0o777) == "0o700"
    for name in ("secret_key", "hash_key", "encryption_key"):
        assert oct((var / name).stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    "argv, role",
    [
        (["/venv/lib/python3.11/site-packages/celery/__main__.py", "-A", "arena", "worker", "-l", "info"], "arena celery worker"),
        (["/venv/lib/python3.11/site-packages/celery/__main__.py", "-A", "arena", "beat"], "arena celery beat"),
        (["/srv/arena/arena/webserver.py", "arena.asgi:application", "--fd", "0"], "arena webserver"),
        (["manage.py", "migrate"], "arena manage migrate"),
        (["-c"], "arena python"),
    ],
)  # fmt: skip
def test_each_process_names_its_database_connections_by_what_it_is(argv, role):
    from arena.settings import process_role

    assert process_role(argv) == role


@pytest.mark.django_db
def test_postgresql_sees_the_connections_named():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("application_name is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('application_name')")
        assert cursor.fetchone()[0] == "arena pytest"
