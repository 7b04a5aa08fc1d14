"""Outside battle logs on disk: FastChat clean_battle JSON and the {"models", "X", "Y"} pair counts.

Files in, engine PairCounts out; no database. Used by `import_battles`, `leaderboard --battles/--pair-counts`
and `export_battles`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ratings.engine.categories import LabelledPairCounts, labelled_counts_from_json
from ratings.engine.counts import PairCounts, counts_from_clean_battles, counts_from_pair_counts_json

CLEAN_BATTLE = "clean_battle"
PAIR_COUNTS = "pair_counts"
FORMATS = (CLEAN_BATTLE, PAIR_COUNTS)


class BattleLogError(ValueError):
    """The file is not a battle log this project reads, or can't be read or written; the message says why."""


@dataclass(frozen=True)
class BattleLog:
    format: str
    counts: PairCounts
    skipped: int  # clean_battle rows left out: named (non-anonymous) battles and de-duplicated prompts


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:  # missing, a directory, unreadable
        raise BattleLogError(f"Can't read {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def detect_format(data: object) -> str:
    if isinstance(data, dict) and {"models", "X", "Y"} <= data.keys():
        return PAIR_COUNTS
    if isinstance(data, list) and (not data or (isinstance(data[0], dict) and "winner" in data[0])):
        return CLEAN_BATTLE
    raise BattleLogError(
        "Not a FastChat clean_battle log (a JSON list of battles with model_a, model_b, winner) "
        'nor pair counts ({"models", "X", "Y"}).'
    )


def counted_battle(record: dict) -> bool:
    """The official leaderboard's filter: anonymous battles only, one per de-duplicated prompt."""
    if record.get("anony") is False:
        return False
    dedup = record.get("dedup_tag")
    return not (isinstance(dedup, dict) and dedup.get("sampled") is False)


def _json_of(path: str | Path):
    """The file's JSON, or a BattleLogError saying why it can't be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise BattleLogError(f"Can't read {path}: {exc}") from exc


def read_battle_log(path: str | Path, format: str | None = None) -> BattleLog:
    data = _json_of(path)
    found = detect_format(data)
    if format is not None and format != found:
        raise BattleLogError(f"{path} looks like {found}, not {format}.")
    if found == PAIR_COUNTS:
        try:
            return BattleLog(PAIR_COUNTS, counts_from_pair_counts_json(data), 0)
        except (KeyError, ValueError, IndexError) as exc:
            raise BattleLogError(f"Malformed pair counts in {path}: {exc}") from exc
    kept = [r for r in data if counted_battle(r)]
    try:
        counts = counts_from_clean_battles(kept)
    except KeyError as exc:
        raise BattleLogError(f"Malformed battle in {path}: missing or unknown {exc}") from exc
    return BattleLog(CLEAN_BATTLE, counts, len(data) - len(kept))


def read_labelled_pair_counts(path: str | Path) -> LabelledPairCounts:
    """Pair counts with their prompt labels (a snapshot's pair_counts.json download), for category boards."""
    data = _json_of(path)
    found = detect_format(data)
    if found != PAIR_COUNTS:
        raise BattleLogError(f"{path} looks like {found}; categories need pair counts (a snapshot's download).")
    try:
        return labelled_counts_from_json(data)
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        raise BattleLogError(f"Malformed pair counts in {path}: {exc}") from exc


def write_clean_battles(records: Iterable[dict], path: str | Path) -> int:
    """Stream records into a JSON list (never all in memory); returns how many were written.

    Written beside the target and renamed at the end, so an interrupted export leaves no half file.
    """
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    written = 0
    try:
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write("[")
            for record in records:
                handle.write(",\n" if written else "\n")
                json.dump(record, handle, ensure_ascii=False)
                written += 1
            handle.write("\n]\n")
        os.replace(partial, path)
    except OSError as exc:  # no such directory, not writable, the disk full, the target a directory
        raise BattleLogError(f"Can't write {path}: {exc.strerror or exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return written
