"""Following a run's progress events while it runs: read its event log in pages from a cursor
(the Dagster instance in process, or GraphQL `logsForRun` on a running stack), fold them into a
run-level figure (domain.progress.RunProgress) and show it: a progress bar on a terminal,
plain lines otherwise.

Imports nothing heavy: the instance and the gateway come from the caller.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from .domain.progress import RunProgress, describe

# (events, cursor, more): events as (step key, message, epoch seconds or None); more: another
# page follows at once
Page = tuple[list[tuple[str | None, str, float | None]], str | None, bool]
PAGE = 1000
POLL_SECONDS = 0.5
LINE_SECONDS = 2.0  # plain lines: at most one per this many seconds (and the last)


def instance_page(instance: Any, run_id: str, cursor: str | None, limit: int = PAGE) -> Page:
    """One page of a run's event log from the instance, after ``cursor``."""
    conn = instance.get_records_for_run(run_id, cursor=cursor, limit=limit)
    events = [
        (r.event_log_entry.step_key, r.event_log_entry.user_message, r.event_log_entry.timestamp)
        for r in conn.records
    ]
    return events, conn.cursor if conn.records else cursor, conn.has_more


class LineDisplay:
    """Plain lines (stdout/stderr is not a terminal): throttled, and the last one always."""

    def __init__(
        self,
        out: TextIO,
        every: float = LINE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        label: str = "run progress",
    ):
        self.out, self.every, self.clock, self.label = out, every, clock, label
        self._last: float | None = None
        self._pending: dict[str, Any] | None = None
        self._shown: dict[str, Any] | None = None

    def show(self, snapshot: dict[str, Any]) -> None:
        now = self.clock()
        self._pending = snapshot
        if self._last is None or now - self._last >= self.every:
            self._write(now)

    def _write(self, now: float) -> None:
        if self._pending is not None and self._pending != self._shown:
            print(f"{self.label} {describe(self._pending)}", file=self.out, flush=True)
            self._shown = self._pending
        self._last = now

    def close(self) -> None:
        self._write(self.clock())


class BarDisplay:
    """A tqdm bar per phase, on a terminal."""

    def __init__(self, out: TextIO):
        self.out = out
        self._bar = None
        self._phase: str | None = None

    def show(self, snapshot: dict[str, Any]) -> None:
        from tqdm import tqdm

        if snapshot["phase"] != self._phase:
            self.close()
            self._phase = snapshot["phase"]
            self._bar = tqdm(
                total=snapshot["total"],
                desc=self._phase,
                file=self.out,
                leave=True,
                # the rate and the ETA are the run's (from its events), not tqdm's own
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                "[{elapsed}{postfix}]",
            )
        bar = self._bar
        bar.total = snapshot["total"]
        bar.n = snapshot["done"]
        eta = snapshot.get("eta_seconds")
        bar.set_postfix_str(
            f"{snapshot['rate_per_second']:.0f}/s, ETA {'?' if eta is None else f'{eta:.0f}'} s",
            refresh=False,
        )
        bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def display_for(out: TextIO | None = None) -> LineDisplay | BarDisplay:
    out = out or sys.stderr
    return BarDisplay(out) if out.isatty() else LineDisplay(out)


class Follower:
    """A daemon thread that reads a run's new events every ``poll`` seconds (``fetch(cursor)``
    → Page) and shows each change of the run-level progress. ``stop()`` reads what is left,
    shows it and closes the display."""

    def __init__(
        self,
        fetch: Callable[[str | None], Page],
        display: LineDisplay | BarDisplay,
        poll: float = POLL_SECONDS,
    ):
        self.fetch, self.display, self.poll = fetch, display, poll
        self.progress = RunProgress()
        self.cursor: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress-follower", daemon=True)
        self._shown: dict[str, Any] | None = None

    def start(self) -> Follower:
        self._thread.start()
        return self

    def read(self) -> None:
        """Every new page, shown if the progress changed."""
        while True:
            events, cursor, more = self.fetch(self.cursor)
            self.cursor = cursor
            for step_key, message, _ts in events:
                self.progress.feed(step_key, message)
            snapshot = self.progress.snapshot()
            if snapshot is not None and snapshot != self._shown:
                self._shown = snapshot
                self.display.show(snapshot)
            if not more:
                return

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.read()
            except Exception:  # noqa: BLE001 - the run not created yet, a storage hiccup
                continue

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join()
        try:
            self.read()
        except Exception:  # noqa: BLE001 - the run's own outcome is what the caller reports
            pass
        self.display.close()
