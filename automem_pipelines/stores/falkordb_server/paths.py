"""Where a data dir's server keeps its files: socket, pidfile, log, lock and data."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# sockaddr_un.sun_path holds 108 bytes on Linux, the terminating NUL included.
_MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class ServerPaths:
    root: Path

    @property
    def socket(self) -> Path:
        path = self.root / "falkordb.sock"
        if len(str(path)) <= _MAX_SOCKET_PATH:
            return path
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:16]
        return Path("/tmp") / f"automem-falkordb-{digest}.sock"

    @property
    def pidfile(self) -> Path:
        return self.root / "falkordb.pid"

    @property
    def logfile(self) -> Path:
        return self.root / "falkordb.log"

    @property
    def lockfile(self) -> Path:
        return self.root / "start.lock"

    @property
    def aof_dir(self) -> Path:
        return self.root / "appendonlydir"

    @property
    def rdb(self) -> Path:
        return self.root / "dump.rdb"


def paths_for(data_dir: Path) -> ServerPaths:
    return ServerPaths(Path(data_dir) / "falkordb")


def _bytes(files: Iterable[Path]) -> int:
    total = 0
    for f in files:
        try:
            total += f.stat().st_size
        except FileNotFoundError:  # removed by a rewrite meanwhile
            pass
    return total


def aof_bytes(paths: ServerPaths) -> int:
    return _bytes(paths.aof_dir.glob("*")) if paths.aof_dir.is_dir() else 0


def persistence_bytes(data_dir: Path) -> int:
    """Bytes on disk of the server's data: the append-only directory plus any dump.rdb."""
    paths = paths_for(data_dir)
    return aof_bytes(paths) + _bytes([paths.rdb])
