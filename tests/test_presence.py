"""The files beside the database that say who holds it (labeling.presence): private, atomic, never trusted blindly."""

from __future__ import annotations

import json
import os
from pathlib import Path

from labeling import presence


def test_the_app_link_is_private_and_found_while_its_process_lives(tmp_path: Path) -> None:
    db = tmp_path / "labeling.duckdb"
    link = presence.AppLink.publish(db, 4321)
    assert presence.app_file(db).stat().st_mode & 0o777 == 0o600
    assert presence.find_app(db) == link and len(link.token) >= 40
    assert [p.name for p in tmp_path.iterdir()] == ["labeling.duckdb.app"]  # no temp file left behind
    link.withdraw()
    assert presence.find_app(db) is None and not presence.app_file(db).exists()


def test_a_link_readable_by_others_or_of_a_dead_process_is_ignored(tmp_path: Path) -> None:
    """A file someone else could have planted (a shared folder) would send a command and its key elsewhere."""
    db = tmp_path / "labeling.duckdb"
    planted = presence.app_file(db)
    planted.write_text(json.dumps({"pid": os.getpid(), "port": 1, "token": "t", "db": str(db)}))
    planted.chmod(0o644)
    assert presence.find_app(db) is None
    planted.chmod(0o600)
    assert presence.find_app(db) is not None
    planted.write_text(json.dumps({"pid": 2**22 + 12345, "port": 1, "token": "t", "db": str(db)}))
    assert presence.find_app(db) is None  # no such process
    planted.unlink()
    planted.symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").write_text(json.dumps({"pid": os.getpid(), "port": 1, "token": "t", "db": ""}))
    (tmp_path / "elsewhere.json").chmod(0o600)
    assert presence.find_app(db) is None  # a symlink is not followed


def test_a_command_says_how_far_it_is_and_withdraws(tmp_path: Path) -> None:
    db = tmp_path / "labeling.duckdb"
    mine = presence.CommandPresence(db, "labeling describe --dataset REAL")
    mine.progress(done=10, total=40, failed=2, run_id=3)
    status = presence.find_command(db)
    assert status is not None and status.pid == os.getpid()
    line = status.line()
    assert line.startswith(f"labeling describe --dataset REAL, PID {os.getpid()}, started ")
    assert line.endswith("; run #3: 12 of 40 images, 2 failed")
    mine.withdraw()
    assert presence.find_command(db) is None
