"""The System page reads like a person wrote it: uptimes in units, timestamps to the second."""

from __future__ import annotations

import re

from hrgc_site.system import human_duration
from hrgc_site.tasks import ping


def test_uptime_reads_in_units():
    assert human_duration(0) == "0 s"
    assert human_duration(45.7) == "45 s"
    assert human_duration(725) == "12 min 5 s"
    assert human_duration(3 * 3600 + 20 * 60 + 9) == "3 h 20 min"
    assert human_duration(2 * 86_400 + 4 * 3600) == "2 d 4 h"
    assert human_duration(7200) == "2 h"


def test_a_worker_answer_names_its_process_and_carries_no_microseconds(db):
    answer = ping()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+", answer["at"])
    assert answer["worker"] == f"{answer['host']}:{answer['pid']}"
