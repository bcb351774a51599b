"""Three stages over a stream of work windows, overlapped: read window k+1 while window k is
embedded and window k-1 is written, so a run costs about its slowest stage, not their sum.

Each stage runs in its own thread and hands its result to the next through a queue of bounded
depth, so at most ``depth`` windows wait between two stages (memory bounded by the window size,
never by the store). The embedder starts a window only while fewer than ``depth + 1`` embedded
windows are unwritten (the one being written and ``depth`` waiting): when writing is the slow
stage, embedding waits for it rather than paying for windows a killed process would lose.
Results come back in window order. The first exception of any stage stops the others at their
next hand-over and is raised to the caller; windows already written stay written (every write
is idempotent, so a rerun repeats at most the windows in flight).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

W = TypeVar("W")
R = TypeVar("R")
E = TypeVar("E")
O = TypeVar("O")  # noqa: E741

_END = object()


class _Stop(Exception):
    """Another stage failed: this one stops where it stands."""


class _Pipe:
    def __init__(self, depth: int):
        self.failed = threading.Event()
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.read_q: queue.Queue = queue.Queue(maxsize=depth)
        self.embed_q: queue.Queue = queue.Queue(maxsize=depth)
        self.unwritten = threading.Semaphore(depth + 1)  # embedded (or embedding), not written

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = exc
        self.failed.set()

    def put(self, q: queue.Queue, item: object) -> None:
        while True:
            if self.failed.is_set():
                raise _Stop
            try:
                q.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def reserve(self) -> None:
        """A slot for one more window embedded and not yet written."""
        while not self.unwritten.acquire(timeout=0.05):
            if self.failed.is_set():
                raise _Stop
        if self.failed.is_set():
            raise _Stop

    def get(self, q: queue.Queue) -> object:
        while True:
            if self.failed.is_set():
                raise _Stop
            try:
                return q.get(timeout=0.05)
            except queue.Empty:
                continue


def run_stages(
    windows: Iterable[W],
    read: Callable[[W], R],
    embed: Callable[[R], E],
    write: Callable[[E], O],
    depth: int = 1,
    between_windows: Callable[[], None] | None = None,
) -> list[O]:
    """Run ``write(embed(read(w)))`` for every window with the three stages overlapped.

    ``between_windows`` is called by the writer after each window is written (an interrupt
    check: whatever it raises stops the run there, after a whole window)."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    pipe = _Pipe(depth)
    results: list[O] = []

    def reader() -> None:
        try:
            for window in windows:
                pipe.put(pipe.read_q, read(window))
            pipe.put(pipe.read_q, _END)
        except _Stop:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            pipe.fail(exc)

    def embedder() -> None:
        try:
            while (item := pipe.get(pipe.read_q)) is not _END:
                pipe.reserve()
                pipe.put(pipe.embed_q, embed(item))  # type: ignore[arg-type]
            pipe.put(pipe.embed_q, _END)
        except _Stop:
            pass
        except BaseException as exc:  # noqa: BLE001
            pipe.fail(exc)

    threads = [
        threading.Thread(target=reader, name="stage-read", daemon=True),
        threading.Thread(target=embedder, name="stage-embed", daemon=True),
    ]
    for t in threads:
        t.start()
    try:  # the writer runs in the caller's thread: interrupts and signals land here
        while (item := pipe.get(pipe.embed_q)) is not _END:
            results.append(write(item))  # type: ignore[arg-type]
            pipe.unwritten.release()
            if between_windows is not None:
                between_windows()
    except _Stop:
        pass
    except BaseException as exc:
        pipe.fail(exc)
    finally:
        for t in threads:
            t.join()
    if pipe.error is not None:
        raise pipe.error
    return results
