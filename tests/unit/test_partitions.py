"""Id-range partitions (domain/partitions.py): keys, ranges, every id in exactly one range."""

from __future__ import annotations

import random
import uuid

import pytest

from automem_pipelines.domain.params import ParamError
from automem_pipelines.domain.partitions import (
    MAX_PARTITIONS,
    IdRange,
    id_range,
    partition_keys,
    partition_ranges,
)

ODD_IDS = ["", "-", "0", "00", "A1B2", "FF", "Legacy-7", "zz", "ff", "ffffffff", "~", "é", "g"]


def test_sixteen_partitions_are_one_hex_digit_each():
    keys = partition_keys(16)
    assert keys[:3] == ["00-0f", "10-1f", "20-2f"] and keys[-1] == "f0-ff"
    assert id_range("00-0f") == IdRange("00-0f", "", "10")
    assert id_range("10-1f") == IdRange("10-1f", "10", "20")
    assert id_range("f0-ff") == IdRange("f0-ff", "f0", None)


@pytest.mark.parametrize("count", [1, 2, 3, 7, 10, 16, 100, 255, 256])
def test_ranges_cover_the_prefixes_in_order_as_evenly_as_whole_prefixes_allow(count):
    ranges = partition_ranges(count)
    assert len(ranges) == count
    assert ranges[0].lo == "" and ranges[-1].hi is None
    for left, right in zip(ranges, ranges[1:]):
        assert left.hi == right.lo  # adjacent: no gap, no overlap
    sizes = []
    for key in partition_keys(count):
        first, last = (int(p, 16) for p in key.split("-"))
        sizes.append(last - first + 1)
    assert sum(sizes) == 256 and max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("count", [1, 10, 16, 256])
def test_every_id_falls_in_exactly_one_range(count):
    ranges = partition_ranges(count)
    rng = random.Random(3)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(2000)]
    ids += [i.upper() for i in ids[:50]] + ODD_IDS
    for mid in ids:
        assert sum(r.contains(mid) for r in ranges) == 1, mid


def test_uuids_spread_over_ten_partitions():
    ranges = partition_ranges(10)
    rng = random.Random(5)
    counts = [0] * 10
    for _ in range(10_000):
        mid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        counts[[r.contains(mid) for r in ranges].index(True)] += 1
    assert min(counts) > 800 and max(counts) < 1200  # ~1,000 each (25 or 26 prefixes)


@pytest.mark.parametrize(
    "key", ["", "0-f", "00-0g", "0F-1F", "10-0f", "00_0f", "000-0ff", " 00-0f", None, 7, ["00-0f"]]
)
def test_a_bad_key_names_the_field_and_the_form(key):
    with pytest.raises(ParamError, match=r"partition must be an id range 'XX-YY'.*XX <= YY") as exc:
        id_range(key)
    assert exc.value.field == "partition"
    assert repr(key) in str(exc.value)


@pytest.mark.parametrize("count", [0, -1, MAX_PARTITIONS + 1, 2.0, True, "16"])
def test_a_bad_count_names_the_range(count):
    with pytest.raises(
        ParamError, match=f"partitions must be an integer from 1 to {MAX_PARTITIONS}"
    ):
        partition_keys(count)
