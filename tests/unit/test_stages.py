"""The overlapped stages: order, overlap, bounded depth, and the first error wins."""

from __future__ import annotations

import threading
import time

import pytest

from automem_pipelines.domain.stages import run_stages


def test_results_in_window_order_through_all_three_stages():
    out = run_stages(range(20), lambda w: w * 10, lambda r: r + 1, lambda e: -e)
    assert out == [-(w * 10 + 1) for w in range(20)]


def test_window_k_is_written_while_later_windows_are_read_and_embedded():
    """The writer of window 0 waits until window 1 has been embedded and window 2 read: with
    stages run one after the other this could never happen (the wait would time out)."""
    read_2 = threading.Event()
    embedded_1 = threading.Event()

    def read(w):
        if w == 2:
            read_2.set()
        return w

    def embed(r):
        if r == 1:
            embedded_1.set()
        return r

    def write(e):
        if e == 0:
            assert embedded_1.wait(10) and read_2.wait(10), "stages did not overlap"
        return e

    assert run_stages(range(5), read, embed, write, depth=2) == [0, 1, 2, 3, 4]


def test_no_stage_runs_more_than_depth_windows_ahead_of_the_writer():
    read_count = 0
    lock = threading.Lock()
    ahead: list[int] = []
    written = 0

    def read(w):
        nonlocal read_count
        with lock:
            read_count += 1
            ahead.append(read_count - written)
        return w

    def write(e):
        nonlocal written
        time.sleep(0.01)
        with lock:
            written += 1
        return e

    run_stages(range(50), read, lambda r: r, write, depth=1)
    # read_q (1) + embed_q (1) + one in each stage's hands (read, embed, write): at most 5.
    assert max(ahead) <= 5


@pytest.mark.parametrize("depth", [1, 2])
def test_a_slow_writer_holds_the_embedder_to_depth_plus_one_unwritten_windows(depth):
    """What a killed process paid for and never wrote: with writing the slow stage, windows
    embedded (or being embedded) and unwritten are at most the one being written plus
    ``depth`` waiting; never the extra one an embedder blocked on a full queue would hold."""
    lock = threading.Lock()
    started = written = 0
    unwritten: list[int] = []

    def embed(r):
        nonlocal started
        with lock:
            started += 1
            unwritten.append(started - written)
        return r

    def write(e):
        nonlocal written
        time.sleep(0.01)
        with lock:
            written += 1
        return e

    assert run_stages(range(40), lambda w: w, embed, write, depth=depth) == list(range(40))
    assert max(unwritten) == depth + 1  # the bound, and reached: embedding still overlaps


@pytest.mark.parametrize("stage", ["read", "embed", "write"])
def test_the_first_error_of_any_stage_stops_the_run_and_is_raised(stage):
    calls = {"read": 0, "embed": 0, "write": 0}

    def make(name):
        def fn(value):
            calls[name] += 1
            if name == stage and value == 3:
                raise RuntimeError(f"{name} broke at 3")
            return value

        return fn

    with pytest.raises(RuntimeError, match=f"{stage} broke at 3"):
        run_stages(range(1000), make("read"), make("embed"), make("write"))
    assert calls["write"] <= 4  # stopped near the failure, not after the whole stream
    assert calls["read"] < 1000


def test_between_windows_runs_after_each_write_and_can_stop_the_run():
    written: list[int] = []

    class Interrupted(Exception):
        pass

    def check():
        if len(written) == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        run_stages(range(10), lambda w: w, lambda r: r, written.append, between_windows=check)
    assert written == [0, 1]


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth must be at least 1, got 0"):
        run_stages([], lambda w: w, lambda r: r, lambda e: e, depth=0)
