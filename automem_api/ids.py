"""Memory ids for /enrichment/reprocess, in AutoMem's forms: a JSON list of strings, a comma
string, or `?ids=a,b`; stripped, deduplicated and sorted as AutoMem answers them.

`normalize_ids` holds the rules that need no configuration (it runs inside the request
model, see schemas.py); `checked_ids` adds the configured ones (no credential inside an id,
at most `max_ids` distinct ids).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from automem_pipelines.domain.params import ParamError

from .redaction import Redactor, echo

MAX_ID_LENGTH = 256  # characters per memory id (AutoMem's are 36-character UUIDs)
# Control (Cc), format (Cf: zero-width, bidi overrides) and lone surrogate (Cs) characters, and
# the Unicode line/paragraph separators: nothing a memory id holds, all trouble in a run.
FORBIDDEN_ID_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
NO_IDS = "No memory ids provided for reprocessing"


def ids_error(message: str) -> ParamError:
    return ParamError("ids", message)


def check_id(index: int, value: str) -> None:
    """One stripped, non-empty id: bounded length, printable."""
    if len(value) > MAX_ID_LENGTH:
        raise ids_error(
            f"ids[{index}] is {len(value)} characters long; ids must be at most {MAX_ID_LENGTH} "
            "characters each"
        )
    for position, char in enumerate(value):
        if unicodedata.category(char) in FORBIDDEN_ID_CATEGORIES:
            raise ids_error(
                f"ids[{index}] contains a control character (U+{ord(char):04X} at position "
                f"{position}); ids must be printable text without control, format or "
                "line-separator characters"
            )


def normalize_ids(value: Any) -> list[str] | None:
    """A list of strings or a comma string → the stripped ids, each checked; None stays None
    (the caller then looks at `?ids=`)."""
    if value is None:
        return None
    if isinstance(value, str):
        ids = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list):
        ids = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise ids_error(f"ids[{index}] must be a non-empty string, got {echo(item)}")
            ids.append(item.strip())
    else:
        raise ids_error("ids must be a list of strings or a comma-separated string")
    if not ids:
        raise ids_error(NO_IDS)
    for index, item in enumerate(ids):
        check_id(index, item)
    return ids


def checked_ids(ids: list[str] | None, max_ids: int, redactor: Redactor) -> list[str]:
    """Normalized ids → deduplicated and sorted, none holding a configured credential."""
    if not ids:
        raise ids_error(NO_IDS)
    for index, item in enumerate(ids):
        if redactor.contains_secret(item):
            raise ids_error(
                f"ids[{index}] contains a configured credential (an API, admin or service "
                "token); credentials are never stored in a run"
            )
    unique = sorted(set(ids))
    if len(unique) > max_ids:
        raise ids_error(f"at most {max_ids} distinct ids per request, got {len(unique)}")
    return unique
