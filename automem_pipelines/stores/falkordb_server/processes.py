"""Which processes are a data dir's server, what they are doing (/proc), and what their log
says since they started."""

from __future__ import annotations

import os
from pathlib import Path

from .paths import ServerPaths


def proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields from the state on (field 3)


def is_server_process(pid: int, paths: ServerPaths) -> bool:
    """pid is alive and is a redis-server whose working directory is this data dir."""
    fields = proc_stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    try:
        exe = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return os.path.basename(exe) == "redis-server" and cwd == os.path.realpath(paths.root)


def read_pid(paths: ServerPaths) -> int | None:
    try:
        return int(paths.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def server_pids(paths: ServerPaths) -> list[int]:
    """The data dir's live redis-server processes: the pidfile's pid first if it is one,
    then any other found in /proc (a pidfile can be lost or point at a recycled pid)."""
    found = []
    recorded = read_pid(paths)
    if recorded and is_server_process(recorded, paths):
        found.append(recorded)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == recorded:
            continue
        try:
            comm = Path(entry.path, "comm").read_text().strip()
        except OSError:
            continue
        if comm == "redis-server" and is_server_process(int(entry.name), paths):
            found.append(int(entry.name))
    return found


def cpu_and_read(pid: int) -> tuple[int, int]:
    """(CPU ticks, bytes read) of pid: what moves while a server loads."""
    fields = proc_stat(pid)
    cpu = int(fields[11]) + int(fields[12]) if fields else -1
    rchar = -1
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("rchar:"):
                rchar = int(line.split()[1])
    except OSError:
        pass
    return cpu, rchar


def log_lines_since_start(paths: ServerPaths, pid: int, chunk: int = 256 * 1024) -> list[str]:
    """This pid's log lines since its last 'Redis is starting' line, read backwards from the
    end of the log until that line (a server that is loading started moments ago)."""
    marker = f"{pid}:".encode()
    try:
        with open(paths.logfile, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            data = b""
            while True:
                start = max(0, end - chunk)
                fh.seek(start)
                data = fh.read(end - start) + data
                lines = [ln for ln in data.split(b"\n") if ln.startswith(marker)]
                starts = [i for i, ln in enumerate(lines) if b"Redis is starting" in ln]
                if starts or start == 0:
                    break
                end = start
    except OSError:
        return []
    lines = lines[starts[-1] :] if starts else lines
    return [ln.decode(errors="replace") for ln in lines]


def logged_ready(paths: ServerPaths, pid: int) -> bool | None:
    lines = log_lines_since_start(paths, pid)
    if not lines:
        return None
    return any("Ready to accept connections" in line for line in lines)


def log_tail(paths: ServerPaths, chars: int = 2000) -> str:
    try:
        return paths.logfile.read_text(errors="replace")[-chars:]
    except OSError:
        return ""
