from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from pydantic import Field

from ..stores.graph import GraphConfig, GraphStore, connect


class FalkorDBResource(dg.ConfigurableResource):
    """The memory graph. With no host, the embedded server under ``data_dir`` is started
    (or reused) on a unix socket."""

    host: str | None = Field(None, description="FalkorDB host; unset = embedded server")
    port: int = Field(6379, description="FalkorDB port (external server only)")
    password: str | None = Field(None, description="FalkorDB password")
    graph: str = Field("memories", description="Graph name (FALKORDB_GRAPH)")
    data_dir: str = Field(description="Data directory of the embedded server")

    def graph_config(self) -> GraphConfig:
        return GraphConfig(self.host, self.port, self.password, self.graph, Path(self.data_dir))

    @contextmanager
    def get_store(self) -> Iterator[GraphStore]:
        store = connect(self.graph_config())
        try:
            yield store
        finally:
            store.close()
