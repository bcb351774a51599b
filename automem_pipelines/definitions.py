"""The module Dagster loads (workspace.yaml, ``[tool.dagster]``, the run workers).

Importing it builds nothing and changes nothing in the importing process (pytest, the CLI,
the API's tests): the code location is built from the environment's settings when Dagster
asks for it, through the ``@dg.definitions`` function below. The garbage-collector freeze
that speeds up each run's load happens in the pre-forked worker server, just before it forks
(``run_workers.py``).
"""

import dagster as dg

from .location import build_definitions, build_resources, store_assets
from .settings import Settings


@dg.definitions
def defs() -> dg.Definitions:
    """The code location, from the settings in the environment."""
    return build_definitions(Settings.from_env())


__all__ = ["build_definitions", "build_resources", "defs", "store_assets"]
