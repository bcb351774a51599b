"""`automem-api`: serve the admin API with uvicorn.

Binds to 127.0.0.1 by default. On any other address without AUTOMEM_API_TOKEN it refuses
to start unless --allow-unauthenticated (or AUTOMEM_API_ALLOW_UNAUTHENTICATED=true) says
that an open API is intended.

Logs never hold a token: uvicorn's own access log is off and the API writes its own
(`automem_api.access`: client, method, route template, status, request id; never a query
string), and every log handler scrubs the configured secrets from what it writes.
"""

from __future__ import annotations

import argparse
import copy
import sys
from typing import Any

from .config import ApiConfig, ApiConfigError, check_safe_bind
from .redaction import Redactor, ScrubSecrets

ACCESS_LOGGER = "automem_api.access"


def log_config(redactor: Redactor, level: str = "info") -> dict[str, Any]:
    """uvicorn's logging set-up, plus the API's access logger, with a scrubbing filter on
    every handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"scrub_secrets": {"()": ScrubSecrets, "redactor": redactor}}
    config["handlers"]["api_access"] = {
        "formatter": "default",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
    }
    for handler in config["handlers"].values():
        handler["filters"] = ["scrub_secrets"]
    config["loggers"][ACCESS_LOGGER] = {
        "handlers": ["api_access"],
        "level": level.upper(),
        "propagate": False,
    }
    # Any other library's warnings go through a filtered handler too (not the bare lastResort).
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    return config


def build_parser() -> argparse.ArgumentParser:
    """Every option has a help text that shows its default."""
    parser = argparse.ArgumentParser(
        prog="automem-api",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="bind address (default AUTOMEM_API_HOST, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default AUTOMEM_API_PORT, else 8001)")
    parser.add_argument(
        "--dagster-url",
        help="Dagster webserver (default DAGSTER_WEBSERVER_URL, else http://127.0.0.1:3000)",
    )
    parser.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="serve without AUTOMEM_API_TOKEN on a non-loopback address "
        "(also AUTOMEM_API_ALLOW_UNAUTHENTICATED=true; default: refuse)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="uvicorn's and the access log's level (default %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)

    overrides = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    if args.dagster_url:
        overrides["dagster_url"] = args.dagster_url
    if args.allow_unauthenticated:
        overrides["allow_unauthenticated"] = True
    try:
        config = ApiConfig.from_env(**overrides)
        check_safe_bind(config)
    except ApiConfigError as exc:
        print(f"automem-api: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

    import uvicorn

    from .app import create_app

    app = create_app(config)
    print(
        f"automem-api: serving on http://{config.host}:{config.port} "
        f"(Dagster {config.dagster_url}, audit log {config.audit_log_path})",
        flush=True,
    )
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=args.log_level,
        access_log=False,
        log_config=log_config(app.state.redactor, args.log_level),
    )


if __name__ == "__main__":
    main()
