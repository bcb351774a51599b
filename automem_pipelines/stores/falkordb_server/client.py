"""Asking the server over its unix socket: ping, and INFO (served while it loads)."""

from __future__ import annotations

from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def client_for(socket_path: Path, timeout: float) -> redis.Redis:
    # No client-side retries: a refused or closed connection is the answer we want here.
    return redis.Redis(
        unix_socket_path=str(socket_path),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def ping(socket_path: Path, timeout: float = 2.0) -> bool:
    if not socket_path.exists():
        return False
    try:
        client = client_for(socket_path, timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


def ask(socket_path: Path, timeout: float) -> tuple[str, dict]:
    """'ready' or 'loading' (with INFO), 'silent' (accepted, no answer in time: something
    listens), 'absent' (no socket file, or nobody listens on it)."""
    if not socket_path.exists():
        return "absent", {}
    client = client_for(socket_path, timeout)
    try:
        info = client.info("server", "persistence")  # INFO is served while loading
    except redis.BusyLoadingError:
        return "loading", {}
    except redis.TimeoutError:
        return "silent", {}
    except (redis.ConnectionError, OSError):
        return "absent", {}
    finally:
        client.close()
    return ("loading" if info.get("loading") else "ready"), info
