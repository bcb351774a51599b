"""The CLI follows a run's progress: plain lines when its output is not a terminal."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from automem_pipelines.domain.progress import format_plan, format_progress
from automem_pipelines.run_progress import Follower, LineDisplay
from tests.helpers import load_sample

REPO = Path(__file__).resolve().parents[2]


def test_reembed_in_process_prints_plain_progress_lines(settings, graph, data_dir, tmp_path):
    load_sample(graph, 1500)
    env = {
        **os.environ,
        "AUTOMEM_DATA_DIR": str(data_dir),
        "FALKORDB_GRAPH": settings.falkordb.graph,
        "QDRANT_COLLECTION": settings.qdrant.collection,
        "DAGSTER_HOME": str(tmp_path / "home"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "automem_pipelines.cli", "reembed", "--batch-size", "32"],
        env=env,
        cwd=REPO,
        capture_output=True,  # pipes: not a terminal, so no bar
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = re.findall(r"^run progress reembed_chunk: (\d+)/(\d+) \(", done.stderr, re.M)
    assert lines, done.stderr
    assert all(total == "1500" for _, total in lines)
    assert lines[-1] == ("1500", "1500")  # the last state is always shown
    assert "\r" not in done.stderr  # no bar redraws in a log
    assert '"processed": 1500' in done.stdout


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_are_throttled_and_the_last_one_is_always_shown():
    clock, out = Clock(), io.StringIO()
    log: list[tuple[str | None, str, float | None]] = []

    def fetch(cursor):
        start = int(cursor or 0)
        return log[start:], str(len(log)), False

    follower = Follower(fetch, LineDisplay(out, every=2.0, clock=clock), poll=3600)
    log.append(("batch_memories", format_plan("reembed_chunk", 3000, 1), None))
    follower.read()
    for done in (1024, 2048):  # half a second apart: the second is held back
        clock.now += 0.5
        log.append(
            (
                "reembed_chunk[chunk_000]",
                format_progress("reembed_chunk", done, 3000, 2048, 1),
                None,
            )
        )
        follower.read()
    clock.now += 0.5
    log.append(
        ("reembed_chunk[chunk_000]", format_progress("reembed_chunk", 3000, 3000, 2000, 0), None)
    )
    follower.stop()  # never started: stop reads what is left and closes the display
    shown = [re.search(r"(\d+)/3000", line)[1] for line in out.getvalue().splitlines()]
    assert shown == ["0", "3000"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_with_the_runs_rate_and_eta():
    from automem_pipelines.run_progress import BarDisplay, display_for

    out = Terminal()
    display = display_for(out)
    assert isinstance(display, BarDisplay)
    display.show(
        {
            "phase": "reembed_chunk",
            "done": 0,
            "total": 1000,
            "rate_per_second": 0.0,
            "eta_seconds": None,
        }
    )
    display.show(
        {
            "phase": "reembed_chunk",
            "done": 500,
            "total": 1000,
            "rate_per_second": 250.0,
            "eta_seconds": 2.0,
        }
    )
    display.close()
    drawn = out.getvalue()
    assert "\r" in drawn and "500/1000" in drawn and "250/s, ETA 2 s" in drawn
    assert isinstance(display_for(io.StringIO()), LineDisplay)  # not a terminal: lines
