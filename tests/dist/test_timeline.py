"""The step timeline (distbp.dist.timeline): phases add up, the report has a row per rank."""

import time

import pytest

from distbp.dist.timeline import OFF, PHASES, Timeline, report


def test_marks_add_the_time_since_the_previous_one():
    timeline = Timeline()
    for _ in range(2):
        timeline.start()
        time.sleep(0.01)
        timeline.mark("forward")
        timeline.mark("update")
        timeline.end_step()
    means = timeline.means_ms()
    assert set(means) == set(PHASES) and means["forward"] >= 9 and means["data"] == 0
    OFF.mark("forward")  # the default: no-ops
    assert OFF.steps == 0


def test_report_has_one_row_per_rank_and_names_the_late_rank():
    ranks = [dict.fromkeys(PHASES, 1.0), {**dict.fromkeys(PHASES, 1.0), "comm": 0.1}]
    lines = report(ranks).splitlines()
    assert len(lines) == 4 and lines[1].startswith("rank 0") and lines[2].startswith("rank 1")
    assert float(lines[1].split()[-1]) == pytest.approx(5.0)
    assert "rank 1 waits least" in lines[3]
