"""What may reach a log or an error message: secrets scrubbed, user values clipped.

The API's logs are built from values it knows to be harmless (route templates, validated
parameters, fingerprints), so no parsing of a query string or a body decides what is
secret. `Redactor` is the second line: the configured secrets (API and admin tokens, provider
and store credentials) are replaced wherever they still appear, in their raw,
percent-encoded and JSON-escaped forms. `clip` bounds every user-supplied value echoed back,
and `short_id` cuts run ids in messages to their first 8 characters.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
MAX_ECHO = 80  # characters of a user-supplied value shown in a message
MAX_MESSAGE = 400  # characters of any error message
UUID_RE = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)


def clip(text: str, limit: int = MAX_ECHO) -> str:
    """At most `limit` characters of text, with `…` when cut."""
    return text if len(text) <= limit else text[:limit] + "…"


def echo(value: object, limit: int = MAX_ECHO) -> str:
    """A user-supplied value as it may appear in a message: its repr, clipped."""
    try:
        shown = repr(value)
    except RecursionError:
        shown = f"<{type(value).__name__}>"
    return clip(shown, limit)


def short_id(run_id: str) -> str:
    """A run id as it appears in messages: its first 8 characters and `…`."""
    return run_id if len(run_id) <= 8 else run_id[:8] + "…"


def shorten_uuids(text: str) -> str:
    return UUID_RE.sub(lambda m: short_id(m.group()), text)


def _forms(secret: str) -> set[str]:
    """The secret as text, URL-quoted (minimally and every byte), JSON and repr-escaped.
    Arbitrary mixes of encoded and plain characters are not covered: logs never hold raw
    query strings, which is where those come from."""
    percent = quote(secret, safe="")
    every_byte = "".join(f"%{b:02X}" for b in secret.encode())
    return {
        secret,
        percent,
        every_byte,
        every_byte.lower(),  # hex digits may come in either case
        quote_plus(secret, safe=""),
        quote(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
    }


class Redactor:
    """Replaces the configured secrets in any text (longest form first)."""

    def __init__(self, secrets: Iterable[str | None]):
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms |= _forms(secret)
        self._forms = sorted((f for f in forms if f), key=len, reverse=True)
        self._pattern = (
            re.compile("|".join(re.escape(f) for f in self._forms)) if self._forms else None
        )

    def scrub(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(REDACTED, text)

    def contains_secret(self, text: str) -> bool:
        return self._pattern is not None and bool(text) and self._pattern.search(text) is not None

    def message(self, text: str) -> str:
        """An error message as it may leave the API: secrets scrubbed, run ids shortened,
        length bounded."""
        return clip(shorten_uuids(self.scrub(text)), MAX_MESSAGE)


class ScrubSecrets(logging.Filter):
    """A handler filter: the configured secrets never leave in a record (message, arguments
    or traceback)."""

    def __init__(self, redactor: Redactor):
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        scrub = self.redactor.scrub
        args = record.args
        if isinstance(args, tuple) and all(
            a is None or isinstance(a, (str, int, float)) for a in args
        ):
            # Plain arguments (uvicorn's access formatter needs them as a tuple): scrub each.
            record.msg = scrub(str(record.msg))
            record.args = tuple(scrub(a) if isinstance(a, str) else a for a in args)
        else:  # anything else is rendered now, so no object's str() escapes the scrub
            record.msg = scrub(record.getMessage())
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True
