from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from pydantic import Field

from ..stores.graph import GraphConfig, GraphStore, connect


class FalkorDBResource(dg.ConfigurableResource):
    """The memory graph. With no host, the embedded server under ``data_dir`` is started
    (or reused) on a unix socket. Each ``get_store()`` block has its own connection."""

    host: str | None = Field(description="FalkorDB host (FALKORDB_HOST); unset = embedded server")
    port: int = Field(description="FalkorDB port (FALKORDB_PORT; external server only)")
    password: str | None = Field(None, description="FalkorDB password (FALKORDB_PASSWORD)")
    graph: str = Field(description="Graph name (FALKORDB_GRAPH)")
    data_dir: str = Field(description="Data directory of the embedded server (AUTOMEM_DATA_DIR)")

    def graph_config(self) -> GraphConfig:
        return GraphConfig(self.host, self.port, self.password, self.graph, Path(self.data_dir))

    @contextmanager
    def get_store(self) -> Iterator[GraphStore]:
        store = connect(self.graph_config())
        try:
            yield store
        finally:
            store.close()
