"""`make wipe-data` deletes the data of the arena it belongs to: the directory the arena itself uses."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def wipe_data(cwd: Path, **env) -> subprocess.CompletedProcess:
    # Run in a scratch directory: a relative var/ is then the scratch one, never this checkout's.
    environment = {key: value for key, value in os.environ.items() if key != "ARENA_VAR_DIR"} | env
    return subprocess.run(["make", "-s", "-f", str(ROOT / "Makefile"), "wipe-data", "CONFIRM=wipe"], cwd=cwd,
                          env=environment, capture_output=True, text=True, timeout=60)  # fmt: skip


def test_wipe_data_deletes_the_directory_arena_var_dir_names_and_nothing_else(tmp_path):
    data = tmp_path / "arena-data"
    data.mkdir()
    (data / "arena.sqlite3").write_text("votes")
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "other.txt").write_text("kept")
    result = wipe_data(tmp_path, ARENA_VAR_DIR=str(data))
    assert result.returncode == 0, result.stderr
    assert not data.exists()
    assert (tmp_path / "var" / "other.txt").read_text() == "kept"
    assert f"{data}/ deleted" in result.stdout


@pytest.mark.parametrize("env", [{}, {"ARENA_VAR_DIR": ""}], ids=["unset", "empty"])
def test_wipe_data_deletes_var_when_arena_var_dir_is_unset_or_empty(tmp_path, env):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "arena.sqlite3").write_text("votes")
    result = wipe_data(tmp_path, **env)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "var").exists()
    assert "var/ deleted" in result.stdout
