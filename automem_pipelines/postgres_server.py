"""A PostgreSQL server for the Dagster instance's storage, started by the project.

Production points ``DAGSTER_POSTGRES_URL`` at its own PostgreSQL; this module is for the test
suite, the benchmarks and a single-machine stack that wants Dagster's production storage
without installing anything by hand. It runs the server binaries found on the machine:
``AUTOMEM_POSTGRES_BIN`` (a directory holding ``initdb``, ``pg_ctl``, ``postgres``), else the
newest Debian install under ``/usr/lib/postgresql/<major>/bin``.

One cluster per directory: ``initdb`` once (trust authentication, user ``postgres``), then
``pg_ctl start`` on 127.0.0.1 at a free port kept in ``<dir>/port``, with its unix socket in
the directory too. PostgreSQL refuses to run as root, so as root every command runs as the
``postgres`` user (``runuser``) and the directory is handed to that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DATABASE = "dagster"
USER = "postgres"
BIN_ENV = "AUTOMEM_POSTGRES_BIN"
DEBIAN_ROOT = Path("/usr/lib/postgresql")
START_TIMEOUT_SECONDS = 60


class PostgresServerError(RuntimeError):
    """The server could not be found, initialised or started; the message says why."""


def find_bin_dir() -> Path:
    given = os.environ.get(BIN_ENV)
    candidates = [Path(given)] if given else []
    if DEBIAN_ROOT.is_dir():
        majors = [p for p in DEBIAN_ROOT.iterdir() if p.name.isdigit()]
        candidates += [p / "bin" for p in sorted(majors, key=lambda p: int(p.name), reverse=True)]
    for path in candidates:
        if all((path / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return path
    where = f"{BIN_ENV}={given!r}" if given else f"{DEBIAN_ROOT}/<major>/bin"
    raise PostgresServerError(
        f"no PostgreSQL server binaries found (looked in {where}): install Debian's "
        f"postgresql package or set {BIN_ENV} to a directory holding initdb, pg_ctl and postgres"
    )


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    if shutil.which("runuser") is None:
        raise PostgresServerError("running as root needs runuser to start PostgreSQL as postgres")
    return ["runuser", "-u", USER, "--", *cmd]


def _run(cmd: list[str], what: str) -> str:
    done = subprocess.run(_as_server_user(cmd), capture_output=True, text=True)
    if done.returncode != 0:
        raise PostgresServerError(f"{what} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _hand_to_server_user(root: Path) -> None:
    """As root, the cluster directory belongs to postgres, and every parent must let it in."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(USER)
    except KeyError as exc:
        raise PostgresServerError(f"running as root needs a {USER!r} user") from exc
    for parent in root.parents:
        if not os.stat(parent).st_mode & 0o001:
            raise PostgresServerError(
                f"{parent} cannot be entered by the {USER} user: choose a directory whose "
                f"parents are world-executable (e.g. under /tmp)"
            )
    os.chown(root, user.pw_uid, user.pw_gid)  # what the server writes in it is its own


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def url_for(root: Path, database: str = DATABASE) -> str:
    port = int((root / "port").read_text())
    return f"postgresql://{USER}@127.0.0.1:{port}/{database}"


def _ready(bin_dir: Path, port: int) -> bool:
    pg_isready = bin_dir / "pg_isready"
    done = subprocess.run(
        [str(pg_isready), "-h", "127.0.0.1", "-p", str(port), "-q"], capture_output=True
    )
    return done.returncode == 0


def ensure_running(root: Path) -> str:
    """Start (initialising once) the cluster in ``root``; return its ``postgresql://`` URL,
    whose database exists."""
    bin_dir = find_bin_dir()
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    cluster = root / "data"
    port_file = root / "port"
    if not port_file.exists():
        port_file.write_text(str(_free_port()))
    port = int(port_file.read_text())
    _hand_to_server_user(root)
    if not (cluster / "PG_VERSION").exists():
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(cluster),
                "-U",
                USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
            "initdb",
        )
    if not _ready(bin_dir, port):  # pg_ctl -w returns once the server accepts connections
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
        _run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(cluster),
                "-l",
                str(root / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                str(START_TIMEOUT_SECONDS),
                "start",
            ],
            "pg_ctl start",
        )
    return create_database(root, DATABASE)


def create_database(root: Path, name: str) -> str:
    """Create database ``name`` in the running cluster of ``root`` unless it exists; return
    its URL."""
    if not name.replace("_", "").isalnum():
        raise PostgresServerError(f"database name {name!r}: letters, digits and _ only")
    bin_dir = find_bin_dir()
    root = root.resolve()
    port = int((root / "port").read_text())
    exists = _run(
        [
            str(bin_dir / "psql"),
            "-h",
            str(root),
            "-p",
            str(port),
            "-U",
            USER,
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{name}'",
            "postgres",
        ],
        "psql",
    )
    if exists.strip() != "1":
        _run(
            [str(bin_dir / "createdb"), "-h", str(root), "-p", str(port), "-U", USER, name],
            "createdb",
        )
    return url_for(root, name)


def stop(root: Path) -> None:
    cluster = root.resolve() / "data"
    if not (cluster / "postmaster.pid").exists():
        return
    _run(
        [str(find_bin_dir() / "pg_ctl"), "-D", str(cluster), "-m", "fast", "-w", "stop"],
        "pg_ctl stop",
    )


@contextmanager
def temporary_server(prefix: str = "amp-pg-") -> Iterator[Path]:
    """A cluster in a fresh directory under /tmp (mode 755: as root the server runs as
    postgres, who must enter every parent), stopped and deleted when the block ends."""
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    root.chmod(0o755)
    try:
        ensure_running(root)
        yield root
    finally:
        stop(root)
        shutil.rmtree(root, ignore_errors=True)
