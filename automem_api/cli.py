"""`automem-api`: serve the admin API with uvicorn.

Binds to 127.0.0.1 by default. On any other address without AUTOMEM_API_TOKEN it refuses
to start unless --allow-unauthenticated (or AUTOMEM_API_ALLOW_UNAUTHENTICATED=true) says
that an open API is intended. Query-string tokens are redacted from the access log.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys

from .config import ApiConfig, ApiConfigError, check_safe_bind

_TOKEN_IN_QUERY = re.compile(r"((?:^|[?&])(?:api_key|admin_token)=)[^&#\s]*", re.IGNORECASE)


def redact(text: str) -> str:
    return _TOKEN_IN_QUERY.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    """uvicorn.access records carry (client, method, path+query, http version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_log_redaction() -> None:
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="automem-api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--host", help="bind address (AUTOMEM_API_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (AUTOMEM_API_PORT, default 8001)")
    parser.add_argument("--dagster-url", help="Dagster webserver (DAGSTER_WEBSERVER_URL, "
                        "default http://127.0.0.1:3000)")  # fmt: skip
    parser.add_argument("--allow-unauthenticated", action="store_true",
                        help="serve without AUTOMEM_API_TOKEN on a non-loopback address")  # fmt: skip
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

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

    install_log_redaction()
    app = create_app(config)
    print(f"automem-api: serving on http://{config.host}:{config.port} "
          f"(Dagster {config.dagster_url}, audit log {config.audit_log_path})", flush=True)  # fmt: skip
    uvicorn.run(app, host=config.host, port=config.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
