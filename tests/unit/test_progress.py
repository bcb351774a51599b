"""The progress reporter (throttle, ETA, final event) and its parse round-trip, without Dagster."""

from __future__ import annotations

import pytest

from automem_pipelines.domain.progress import (
    Progress,
    RunProgress,
    describe,
    format_plan,
    format_progress,
    parse_progress,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def reporter(total: int, every: float = 2.0) -> tuple[Progress, list[str], Clock]:
    lines: list[str] = []
    clock = Clock()
    return Progress("reembed_chunk", total, lines.append, every=every, clock=clock), lines, clock


def test_start_reports_zero_of_total():
    progress, lines, _ = reporter(10_000)
    progress.start()
    assert lines == ["progress reembed_chunk: 0/10000 memories (0.0/s, ETA ? s)"]


def test_updates_are_throttled_to_one_event_per_interval():
    progress, lines, clock = reporter(10_000)
    progress.start()
    for step in range(1, 17):  # 16 updates over 4 s: one every 0.25 s
        clock.now += 0.25
        progress.update(step * 100)
    # the start, then at 2 s and at 4 s
    assert [parse_progress(x)["done"] for x in lines] == [0, 800, 1600]


def test_rate_and_eta_from_the_clock():
    progress, lines, clock = reporter(10_000)
    progress.start()
    clock.now += 2.0
    progress.update(3000)
    parsed = parse_progress(lines[-1])
    assert parsed["done"] == 3000 and parsed["total"] == 10_000
    assert parsed["rate_per_second"] == pytest.approx(1500.0)
    assert parsed["eta_seconds"] == pytest.approx(7000 / 1500, abs=0.05)


def test_finish_reports_the_final_count_once():
    progress, lines, clock = reporter(5000)
    progress.start()
    clock.now += 0.5
    progress.update(2500)  # throttled: less than 2 s after the start
    assert len(lines) == 1
    clock.now += 0.5
    progress.finish(5000)
    assert parse_progress(lines[-1])["done"] == 5000
    assert parse_progress(lines[-1])["eta_seconds"] == 0.0
    progress.finish()  # the last event already said it
    assert len(lines) == 2
    meta = progress.metadata()
    assert meta["progress_done"] == 5000 and meta["progress_total"] == 5000
    assert meta["progress_events"] == 2 and meta["progress_seconds"] == pytest.approx(1.0)


def test_every_zero_turns_the_events_off_but_keeps_the_counts():
    progress, lines, clock = reporter(100, every=0)
    progress.start()
    clock.now += 5
    progress.update(50)
    progress.finish(100)
    assert lines == []
    assert progress.metadata()["progress_done"] == 100


def test_done_never_goes_back_nor_past_the_total():
    progress, _, _ = reporter(100)
    progress.update(60)
    progress.update(40)
    assert progress.done == 60
    progress.update(500)
    assert progress.done == 100


def test_total_learned_later():
    progress, lines, clock = reporter(0)
    clock.now += 1
    progress.update(0, 2000)
    clock.now += 2
    progress.update(1000, 2000)
    assert [parse_progress(x)["total"] for x in lines] == [2000, 2000]


@pytest.mark.parametrize(
    "line",
    [
        format_progress("reembed_chunk", 3072, 10000, 1450.04, 4.8),
        format_progress("detect_drift", 0, 0, 0.0, None, unit="rows"),
        format_plan("reembed_chunk", 12020, 2),
        format_plan("enrich_batch", 10, 1),
    ],
)
def test_parse_round_trip(line):
    parsed = parse_progress(line)
    assert parsed is not None
    if "planned_steps" in parsed:
        again = format_plan(
            parsed["phase"], parsed["total"], parsed["planned_steps"], parsed["unit"]
        )
    else:
        again = format_progress(
            parsed["phase"],
            parsed["done"],
            parsed["total"],
            parsed["rate_per_second"],
            parsed["eta_seconds"],
            parsed["unit"],
        )
    assert again == line


@pytest.mark.parametrize(
    "message",
    [
        None,
        "",
        "chunk 0: wrote 100 points",
        "progress reembed_chunk: lots",
        "progress reembed_chunk: 1/2 memories",
        "re-embed complete: processed=3 skipped=0 failed=0 total=3",
    ],
)
def test_other_messages_are_not_progress(message):
    assert parse_progress(message) is None


def test_run_progress_sums_the_latest_event_per_step_of_the_current_phase():
    run = RunProgress()
    assert run.snapshot() is None
    assert not run.feed("enumerate_memories", "12020 memories: 12020 to embed")
    assert run.feed("batch_memories", format_plan("reembed_chunk", 12020, 2))
    assert run.snapshot() == {
        "phase": "reembed_chunk",
        "done": 0,
        "total": 12020,
        "rate_per_second": 0.0,
        "eta_seconds": None,
    }
    run.feed("reembed_chunk[chunk_000]", format_progress("reembed_chunk", 0, 10000, 0, None))
    run.feed("reembed_chunk[chunk_000]", format_progress("reembed_chunk", 4096, 10000, 1000, 5.9))
    run.feed("reembed_chunk[chunk_001]", format_progress("reembed_chunk", 1024, 2020, 500, 2.0))
    snap = run.snapshot()
    assert (snap["done"], snap["total"]) == (5120, 12020)
    assert snap["rate_per_second"] == 1500.0  # both steps are running
    assert snap["eta_seconds"] == pytest.approx(6900 / 1500, abs=0.05)
    run.feed("reembed_chunk[chunk_000]", format_progress("reembed_chunk", 10000, 10000, 1000, 0))
    run.feed("reembed_chunk[chunk_001]", format_progress("reembed_chunk", 2020, 2020, 500, 0))
    snap = run.snapshot()
    assert (snap["done"], snap["total"], snap["eta_seconds"]) == (12020, 12020, 0.0)
    assert describe(snap) == "reembed_chunk: 12020/12020 (500.0/s, ETA 0.0 s)"


def test_run_progress_follows_the_phase_of_the_latest_event():
    run = RunProgress()
    run.feed("detect_drift", format_progress("detect_drift", 20000, 20000, 9000, 0, "rows"))
    run.feed("repair_vectors", format_progress("repair_vectors", 10, 300, 100, 2.9))
    snap = run.snapshot()
    assert snap["phase"] == "repair_vectors" and (snap["done"], snap["total"]) == (10, 300)
