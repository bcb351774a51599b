"""Resources own their clients: opened at a run's first use, shared by its steps, closed when
the run's resources are torn down; outside a run the caller opens and closes."""

import dagster as dg
import pytest

from automem_pipelines.definitions import build_resources
from automem_pipelines.resources import EmbeddingsResource, QdrantResource
from automem_pipelines.stores import vectors


def test_a_run_opens_the_store_once_for_its_steps_and_closes_it(settings):
    res = build_resources(settings, from_env=False)
    config = res["qdrant"].vector_config()
    seen = []

    @dg.op
    def first(qdrant: QdrantResource) -> int:
        seen.append(qdrant.get_store())
        return vectors.local_holders(config)

    @dg.op
    def second(qdrant: QdrantResource, holders: int) -> int:
        seen.append(qdrant.get_store())
        return holders

    @dg.job(executor_def=dg.in_process_executor)
    def two_steps():
        second(first())

    result = two_steps.execute_in_process(resources={"qdrant": res["qdrant"]})
    assert result.output_for_node("second") == 1  # one opener for the run
    assert seen[0] is seen[1]  # both steps used the run's store
    assert vectors.local_holders(config) == 0  # closed with the run: free for other processes


def test_outside_a_run_the_store_is_opened_for_a_block(settings):
    qdrant = build_resources(settings, from_env=False)["qdrant"]
    with pytest.raises(RuntimeError, match="open_store"):
        qdrant.get_store()
    with qdrant.open_store() as store:
        assert vectors.local_holders(qdrant.vector_config()) == 1
        store.ensure_collection(8)
    assert vectors.local_holders(qdrant.vector_config()) == 0


def test_a_run_builds_one_provider_and_closes_it():
    built = []

    class Counting(EmbeddingsResource):
        def build_provider(self):
            provider = super().build_provider()
            built.append(provider)
            return provider

    @dg.op
    def embed_twice(embeddings: EmbeddingsResource) -> int:
        return embeddings.get_provider().dim + embeddings.get_provider().dim

    @dg.job
    def embedding():
        embed_twice()

    assert (
        embedding.execute_in_process(resources={"embeddings": Counting()}).output_for_node(
            "embed_twice"
        )
        == 512
    )
    assert len(built) == 1
