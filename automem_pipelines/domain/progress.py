"""Progress of a long step, as log lines an operator can read and a program can parse.

One format, written by `Progress` and read back by `parse_progress`::

    progress reembed_chunk: 3072/10000 memories (1450.2/s, ETA 4.8 s)
    progress reembed_chunk: 0/10000 memories (planned, 10 steps)

A step reports done/total at most every ``every`` seconds (and at its start and end), so a
step of any length writes a handful of events, never one per memory. `RunProgress` folds a
run's events into one run-level figure (the latest event per step, summed over the steps of
the current phase): what the admin API's `/admin/runs/{id}` and the CLI show. No Dagster here:
the ops pass a sink that logs, the API and the CLI feed it the messages they read.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_EVERY_SECONDS = 2.0  # between two progress events of one step (0: no events)
PREFIX = "progress "

_LINE = re.compile(
    r"^progress (?P<phase>[A-Za-z0-9_]+): (?P<done>\d+)/(?P<total>\d+) (?P<unit>[A-Za-z_]+)"
    r" \((?:(?P<rate>\d+(?:\.\d+)?)/s, ETA (?P<eta>\d+(?:\.\d+)?|\?) s"
    r"|planned, (?P<steps>\d+) steps?)\)$"
)


def format_progress(
    phase: str, done: int, total: int, rate: float, eta: float | None, unit: str = "memories"
) -> str:
    eta_text = "?" if eta is None else f"{eta:.1f}"
    return f"{PREFIX}{phase}: {done}/{total} {unit} ({rate:.1f}/s, ETA {eta_text} s)"


def format_plan(phase: str, total: int, steps: int, unit: str = "memories") -> str:
    """A run's whole plan for a phase done by several steps (a fan-out): its total."""
    return (
        f"{PREFIX}{phase}: 0/{total} {unit} (planned, {steps} {'step' if steps == 1 else 'steps'})"
    )


def parse_progress(message: str | None) -> dict[str, Any] | None:
    """The fields of a progress line (`format_progress` or `format_plan`), else None.

    Keys: phase, done, total, unit, and either rate_per_second + eta_seconds (None when
    unknown) or planned_steps."""
    if not message or not message.startswith(PREFIX):
        return None
    found = _LINE.match(message.strip())
    if found is None:
        return None
    out: dict[str, Any] = {
        "phase": found["phase"],
        "done": int(found["done"]),
        "total": int(found["total"]),
        "unit": found["unit"],
    }
    if found["steps"] is not None:
        out["planned_steps"] = int(found["steps"])
        return out
    out["rate_per_second"] = float(found["rate"])
    out["eta_seconds"] = None if found["eta"] == "?" else float(found["eta"])
    return out


class Progress:
    """done/total of one step, reported through ``sink`` at most every ``every`` seconds, at
    the start and at the end. ``every`` <= 0 turns the events off (the counts are still kept
    for the step's metadata). ``clock`` is injectable for tests (monotonic seconds)."""

    def __init__(
        self,
        phase: str,
        total: int,
        sink: Callable[[str], None],
        unit: str = "memories",
        every: float = DEFAULT_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.phase = phase
        self.total = max(0, int(total))
        self.unit = unit
        self.every = every
        self._sink = sink
        self._clock = clock
        self.done = 0
        self.started = clock()
        self._last_emit: float | None = None
        self._last_done: int | None = None
        self.events = 0

    @property
    def enabled(self) -> bool:
        return self.every > 0

    def elapsed(self) -> float:
        return self._clock() - self.started

    def rate(self) -> float:
        seconds = self.elapsed()
        return self.done / seconds if seconds > 0 else 0.0

    def eta(self) -> float | None:
        remaining = self.total - self.done
        if remaining <= 0:
            return 0.0
        rate = self.rate()
        return remaining / rate if rate > 0 else None

    def message(self) -> str:
        return format_progress(
            self.phase, self.done, self.total, self.rate(), self.eta(), self.unit
        )

    def _emit(self, now: float) -> None:
        self._last_emit = now
        self._last_done = self.done
        self.events += 1
        self._sink(self.message())

    def start(self) -> Progress:
        """The first event (0/total): the step has begun and how much it has to do."""
        if self.enabled:
            self._emit(self._clock())
        return self

    def update(self, done: int, total: int | None = None) -> None:
        """``done`` so far (absolute; ``total`` if it became known or changed); reported if
        ``every`` seconds passed since the last event."""
        if total is not None:
            self.total = max(0, int(total))
        self.done = min(max(self.done, int(done)), self.total) if self.total else int(done)
        if not self.enabled:
            return
        now = self._clock()
        if self._last_emit is None or now - self._last_emit >= self.every:
            self._emit(now)

    def advance(self, count: int) -> None:
        self.update(self.done + count)

    def finish(self, done: int | None = None) -> None:
        """The last event, with the final count (unless the last event already said it)."""
        if done is not None:
            self.done = int(done)
        if self.enabled and self._last_done != self.done:
            self._emit(self._clock())

    def metadata(self) -> dict[str, float | int]:
        """The final numbers, for the step's metadata."""
        return {
            "progress_done": self.done,
            "progress_total": self.total,
            "progress_seconds": round(self.elapsed(), 3),
            "progress_rate_per_second": round(self.rate(), 1),
            "progress_events": self.events,
        }


def step_phase(step_key: str | None) -> str:
    """``reembed_chunk[chunk_003]`` → ``reembed_chunk``."""
    return (step_key or "").split("[", 1)[0]


@dataclass
class RunProgress:
    """A run's progress from its progress events, fed in log order: the latest event of each
    step, summed over the steps of the current phase (the phase of the latest event). A plan
    event (`format_plan`) gives the phase's total before all its steps have started."""

    steps: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # phase→step→ev
    planned: dict[str, int] = field(default_factory=dict)
    phase: str | None = None

    def feed(self, step_key: str | None, message: str | None) -> bool:
        """One event's step and message; True if it was a progress event."""
        parsed = parse_progress(message)
        if parsed is None:
            return False
        phase = parsed["phase"]
        self.phase = phase
        if "planned_steps" in parsed:
            self.planned[phase] = parsed["total"]
        else:
            self.steps.setdefault(phase, {})[step_key or phase] = parsed
        return True

    def snapshot(self) -> dict[str, Any] | None:
        """{phase, done, total, rate_per_second, eta_seconds} of the current phase, or None
        before the first progress event."""
        if self.phase is None:
            return None
        events = list(self.steps.get(self.phase, {}).values())
        done = sum(e["done"] for e in events)
        total = max(self.planned.get(self.phase, 0), sum(e["total"] for e in events))
        running = [e for e in events if e["done"] < e["total"]]
        rate = sum(e["rate_per_second"] for e in (running or events[-1:]))
        remaining = total - done
        eta = 0.0 if remaining <= 0 else (remaining / rate if rate > 0 else None)
        return {
            "phase": self.phase,
            "done": done,
            "total": total,
            "rate_per_second": round(rate, 1),
            "eta_seconds": None if eta is None else round(eta, 1),
        }


def describe(snapshot: dict[str, Any]) -> str:
    """One plain line of a run-level snapshot (the CLI's non-terminal output)."""
    eta = snapshot.get("eta_seconds")
    return (
        f"{snapshot['phase']}: {snapshot['done']}/{snapshot['total']} "
        f"({snapshot['rate_per_second']:.1f}/s, ETA {'?' if eta is None else f'{eta:.1f}'} s)"
    )
