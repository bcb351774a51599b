"""Preloaded by a worker server in tests: asks it to preload a module this Dagster does not
have (the server runs as ``python -m automem_pipelines.run_workers``, i.e. ``__main__``)."""

import __main__

MISSING = "dagster._no_such_module_for_tests"
__main__.WARM_MODULES = (*__main__.WARM_MODULES, MISSING)
