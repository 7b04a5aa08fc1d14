"""Settings read from the environment: typos are refused, lists are tidied."""

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

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


def test_processes_starting_together_on_a_fresh_var_all_get_the_one_whole_key(tmp_path, monkeypatch):
    """Between a key file's creation and its write, a process starting beside the one generating it read an
    empty key (HASH_KEY "": address hashes anyone can reverse), or failed on the file just created."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from arena import settings

    monkeypatch.setattr(settings, "VAR_DIR", tmp_path)
    monkeypatch.delenv("ARENA_TEST_KEY", raising=False)
    starting = Barrier(6)

    def generate():
        time.sleep(0.2)  # a slow generator widens the moment between creating the file and writing it
        return secrets.token_hex(16)

    def start(index):
        starting.wait()
        if index % 2:
            time.sleep(0.05)  # half of them arrive while the others are generating
        return settings._key("ARENA_TEST_KEY", "test_key", generate)

    with ThreadPoolExecutor(6) as pool:
        keys = list(pool.map(start, range(6)))
    assert len(set(keys)) == 1 and len(keys[0]) == 32
    assert [path.name for path in tmp_path.iterdir()] == ["test_key"]  # no temporary file left behind
    assert oct((tmp_path / "test_key").stat().st_mode & 0o777) == "0o600"


def test_where_files_cannot_be_hard_linked_the_key_is_created_in_place_and_read_whole(tmp_path, monkeypatch):
    """vfat and some network mounts refuse hard links: the first start there failed on os.link."""
    from arena import settings

    def no_links(source, target):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(settings, "VAR_DIR", tmp_path)
    monkeypatch.setattr(settings.os, "link", no_links)
    monkeypatch.delenv("ARENA_TEST_KEY", raising=False)
    key = settings._key("ARENA_TEST_KEY", "test_key", lambda: "k" * 32)
    assert key == "k" * 32 and (tmp_path / "test_key").read_text() == key
    assert [path.name for path in tmp_path.iterdir()] == ["test_key"]
    assert oct((tmp_path / "test_key").stat().st_mode & 0o777) == "0o600"


def test_an_empty_key_file_stops_the_start_rather_than_hash_with_an_empty_key(tmp_path, monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from arena import settings

    monkeypatch.setattr(settings, "VAR_DIR", tmp_path)
    monkeypatch.delenv("ARENA_TEST_KEY", raising=False)
    (tmp_path / "test_key").write_text("\n")
    with pytest.raises(ImproperlyConfigured, match="test_key is empty: set ARENA_TEST_KEY"):
        settings._key("ARENA_TEST_KEY", "test_key", lambda: "unused")


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


def one_setting_in_a_fresh_interpreter(tmp_path, name: str, **env) -> subprocess.CompletedProcess:
    code = f"from django.conf import settings; print(repr(settings.{name}))"
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "arena.settings", "ARENA_VAR_DIR": str(tmp_path), **env}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True)


@pytest.mark.parametrize("name", ["HEALTH_PROBE_INTERVAL", "JUDGE_SCREEN_INTERVAL", "LEADERBOARD_RECOMPUTE_INTERVAL"])
@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_beat_interval_of_zero_or_less_stops_the_start_naming_the_variable(tmp_path, name, value):
    """Celery treats such an interval as always due: beat would publish the task in a tight loop."""
    result = one_setting_in_a_fresh_interpreter(tmp_path, name, **{name: value})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name}='{value}' is too small; use " in result.stderr
    assert "of at least 1" in result.stderr


@pytest.mark.parametrize("name, value, expected", [("DB_THREADS", "twelve", "is not a whole number"),
                                                   ("HEALTH_PROBE_INTERVAL", "15s", "is not a number"),
                                                   ("HEALTH_PROBE_INTERVAL", "nan", "is not a number")])  # fmt: skip
def test_a_number_setting_that_is_no_number_stops_the_start_naming_the_variable(tmp_path, name, value, expected):
    result = one_setting_in_a_fresh_interpreter(tmp_path, name, **{name: value})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name}='{value}' {expected}" in result.stderr


@pytest.mark.parametrize("value, expected", [("", "None"), ("1", "True"), ("no", "False")])
def test_arena_gpu_is_unset_yes_or_no_and_a_typo_stops_the_start(tmp_path, value, expected):
    """ARENA_GPU=false used to be ignored (only "0" and "1" were looked at): vLLM models went on starting."""
    result = one_setting_in_a_fresh_interpreter(tmp_path, "ARENA_GPU", ARENA_GPU=value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
    result = one_setting_in_a_fresh_interpreter(tmp_path, "ARENA_GPU", ARENA_GPU="nope")
    assert result.returncode != 0 and "ARENA_GPU='nope' is not a yes/no value" in result.stderr


@pytest.mark.parametrize(
    "name, value", [("PORT", "eighty"), ("PORT", "70000"), ("WEB_PROCESSES", "0"), ("EMBEDDED_REDIS_PORT", "6390x")]
)
def test_the_supervisors_own_settings_are_checked_and_named_without_a_traceback(tmp_path, name, value):
    """`PORT=abc make run` ended in a traceback saying only "invalid literal for int()"."""
    environment = {key: v for key, v in os.environ.items() if key not in {"REDIS_URL", "PORT", "WEB_PROCESSES"}}
    environment.update(ARENA_VAR_DIR=str(tmp_path), **{name: value})
    result = subprocess.run([sys.executable, "-m", "arena.supervisor", "--print-config"], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"supervisor | {name}='{value}' is ") and "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_number_setting_means_its_default(tmp_path, value):
    result = one_setting_in_a_fresh_interpreter(tmp_path, "DB_THREADS", DB_THREADS=value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "8"


def test_an_encryption_key_fernet_cannot_use_stops_the_start_with_the_command_that_makes_one(tmp_path):
    hex_key = "5f" * 32  # what `openssl rand -hex 32` prints
    result = one_setting_in_a_fresh_interpreter(tmp_path, "ENCRYPTION_KEYS", ARENA_ENCRYPTION_KEY=hex_key)
    assert result.returncode != 0
    assert "ImproperlyConfigured: ARENA_ENCRYPTION_KEY: key 1 of 1 is not a Fernet key" in result.stderr
    assert "Fernet.generate_key()" in result.stderr
    assert hex_key not in result.stderr  # a secret is never repeated into a log


def test_a_bad_key_in_a_rotation_list_is_refused_by_its_place(tmp_path):
    good = Fernet.generate_key().decode()
    result = one_setting_in_a_fresh_interpreter(tmp_path, "ENCRYPTION_KEYS", ARENA_ENCRYPTION_KEY=f"{good},not-a-key")
    assert result.returncode != 0
    assert "key 2 of 2 is not a Fernet key" in result.stderr


def test_a_rotation_list_with_a_trailing_comma_keeps_only_its_keys(tmp_path):
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    result = one_setting_in_a_fresh_interpreter(tmp_path, "ENCRYPTION_KEYS", ARENA_ENCRYPTION_KEY=f"{new}, {old},")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr([new, old])


@pytest.mark.django_db
def test_a_pooled_connection_postgresql_dropped_is_replaced_before_it_is_handed_out():
    """As after a PostgreSQL restart: every idle connection in the pool is dead, and the next borrower still
    gets a working one."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the pool is PostgreSQL's")
    pool = connection.pool
    with pool.connection() as pooled:
        pooled.execute("SELECT 1")  # at least one idle connection waits in the pool
    with connection.cursor() as cursor:
        # Every other connection to this database, the pool's idle ones among them; waits until they are gone.
        cursor.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchall(), "the pool held no idle connection to drop"
    with pool.connection() as pooled:
        assert pooled.execute("SELECT 1").fetchone() == (1,)


def test_a_log_level_is_read_in_any_case_and_a_wrong_one_is_named(tmp_path):
    """LOG_LEVEL=debug crashed every process at start ("Unable to configure root logger", a traceback)."""
    code = "import django, logging; django.setup(); print(logging.getLevelName(logging.getLogger().level))"
    for value, level in (("debug", "DEBUG"), (" Warning ", "WARNING"), ("verbose", None)):
        environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "arena.settings", "ARENA_VAR_DIR": str(tmp_path),
                       "LOG_LEVEL": value}  # fmt: skip
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True)
        if level:
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip() == level
        else:
            assert result.returncode != 0
            assert (
                "ImproperlyConfigured: LOG_LEVEL='verbose' is not a log level; use one of DEBUG, INFO" in result.stderr
            )
