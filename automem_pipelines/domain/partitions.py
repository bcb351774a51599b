"""Id-range partitions of the memory store, for a re-embed run as a partitioned backfill.

Memory ids are AutoMem's uuid4 strings, whose first two hex digits spread evenly over 256
prefixes. A partition is a range of those prefixes, named by its first and last prefix: the
key "19-32" holds the ids with "19" <= id < "33". The first partition starts at "" and the
last one is open above, so every string id, a UUID or not (upper case, "legacy-7", ""), falls
in exactly one partition of a set: string order, as the graph compares ``m.id``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo

from .params import ParamError

PREFIX_DIGITS = 2
PREFIXES = 16**PREFIX_DIGITS  # 256: the most partitions a set can have
MAX_PARTITIONS = PREFIXES
DEFAULT_PARTITIONS = 16
_KEY = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{2})$")
KEY_TEXT = (
    "an id range 'XX-YY' of two-digit lower-case hex prefixes with XX <= YY "
    "(a partition key such as '00-0f')"
)


@dataclass(frozen=True)
class IdRange:
    """Memory ids with ``lo <= id < hi`` (string order); ``hi`` None: no upper bound."""

    key: str
    lo: str
    hi: str | None

    def contains(self, memory_id: str) -> bool:
        return memory_id >= self.lo and (self.hi is None or memory_id < self.hi)


def _prefix(n: int) -> str:
    return f"{n:0{PREFIX_DIGITS}x}"


def check_count(count: Any, field: str = "partitions") -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PARTITIONS:
        raise ParamError(
            field, f"{field} must be an integer from 1 to {MAX_PARTITIONS}, got {count!r}"
        )
    return count


def partition_keys(count: int) -> list[str]:
    """``count`` keys whose ranges cover the prefix space in order, as evenly as whole
    prefixes allow (sizes differ by at most one prefix)."""
    check_count(count)
    starts = [k * PREFIXES // count for k in range(count)] + [PREFIXES]
    return [f"{_prefix(starts[k])}-{_prefix(starts[k + 1] - 1)}" for k in range(count)]


def id_range(key: Any, field: str = "partition") -> IdRange:
    """The id range a key names; ParamError naming ``field`` for anything else."""
    match = _KEY.match(key) if isinstance(key, str) else None
    if match is None or match.group(1) > match.group(2):
        raise ParamError(field, f"{field} must be {KEY_TEXT}, got {key!r}")
    first, last = (int(g, 16) for g in match.groups())
    return IdRange(
        key,
        "" if first == 0 else _prefix(first),
        None if last == PREFIXES - 1 else _prefix(last + 1),
    )


def partition_ranges(count: int) -> list[IdRange]:
    return [id_range(key) for key in partition_keys(count)]


def _key_check(value: Any, info: ValidationInfo) -> Any:
    if value is None:
        return None
    field = info.field_name or (info.context or {}).get("field") or "partition"
    id_range(value, field)
    return value


# The run parameter (a Config field, the run-config builder): a key as above, or None.
PartitionKey = Annotated[str | None, BeforeValidator(_key_check)]
