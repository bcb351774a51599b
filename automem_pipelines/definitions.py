"""The module Dagster loads (workspace.yaml, ``[tool.dagster]``): the code location built in
``location.py``, loaded with the cyclic garbage collector paused and then frozen.

Every run is a fresh Python process that imports this module before its first step.
Importing dagster, qdrant-client, redis, numpy and our modules creates several hundred
thousand long-lived objects, and CPython runs a full collection each time the old
generation grows by a quarter: four or five of them during the import, 0.2–0.45 s of a
1.3–1.5 s load, plus one more (0.16 s) early in the run. None of those objects is garbage.
Pausing the collector while the location loads and freezing what it built (``gc.freeze``:
later collections skip these objects; refcounting still frees them) saves that time in every
run worker and in the code server (figures in the README, "Admin API" benchmark).
"""

import gc

from .domain.gc_pause import cyclic_gc_paused

with cyclic_gc_paused():
    from .location import build_definitions, build_resources, defs, store_assets

gc.freeze()

__all__ = ["build_definitions", "build_resources", "defs", "store_assets"]
