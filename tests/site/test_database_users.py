"""Who counts as a live user of the embedded PostgreSQL: the last one to leave stops the server, so a live
process must never be taken for dead (the server would stop under it), nor a dead one for live."""

from __future__ import annotations

import os

from hrgc_site.database import USERS_DIR, _started_at, live_users


def _record(data_dir, pid: int, started: str) -> None:
    users = data_dir / USERS_DIR
    users.mkdir(parents=True, exist_ok=True)
    (users / str(pid)).write_text(started)


def test_a_live_user_whose_start_time_drifted_with_the_clock_is_still_live(tmp_path):
    # Linux derives start times from a boot time that NTP adjustments move: hundredths of a second over
    # a long session. The test session itself was taken for dead that way and its server stopped.
    started = float(_started_at(os.getpid()))
    _record(tmp_path, os.getpid(), f"{started + 0.05:.2f}")
    assert live_users(tmp_path) == [os.getpid()]


def test_a_reused_pid_and_a_gone_process_are_not_users(tmp_path):
    started = float(_started_at(os.getpid()))
    _record(tmp_path, os.getpid(), f"{started - 3600:.2f}")  # this pid, but another process's start
    _record(tmp_path, 2**22 + 17, "1.00")  # above Linux's pid_max: no such process
    assert live_users(tmp_path) == []
    assert not any((tmp_path / USERS_DIR).iterdir()), "the dead entries are pruned"
