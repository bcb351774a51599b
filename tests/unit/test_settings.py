import pytest

from automem_pipelines.settings import Settings, SettingsError


def test_defaults_match_automem():
    s = Settings.from_env({"AUTOMEM_DATA_DIR": "/tmp/x"})
    assert (s.falkordb_graph, s.qdrant_collection, s.falkordb_port) == ("memories", "memories", 6379)
    assert s.falkordb_embedded and s.qdrant_local
    assert (s.embedding_provider, s.vector_size) == ("local", 256)
    assert s.recall_excluded_types == ("MetaPattern",)
    assert (s.enrichment_max_attempts, s.enrichment_similarity_limit) == (3, 5)
    assert s.enrichment_similarity_threshold == 0.8 and s.sync_check_interval_seconds == 3600


def test_openai_is_chosen_automatically_with_a_key_and_defaults_to_1024():
    s = Settings.from_env({"OPENAI_API_KEY": "sk-x"})
    assert (s.embedding_provider, s.embedding_model, s.vector_size) == ("openai", "text-embedding-3-small", 1024)
    s = Settings.from_env({"OPENAI_API_KEY": "sk-x", "QDRANT_VECTOR_SIZE": "768"})
    assert s.vector_size == 768


def test_empty_strings_count_as_unset():
    s = Settings.from_env({"FALKORDB_HOST": "", "QDRANT_URL": " ", "VECTOR_SIZE": ""})
    assert s.falkordb_embedded and s.qdrant_local


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"FALKORDB_PORT": "abc"}, "FALKORDB_PORT='abc' is not valid: expected an integer from 1 to 65535"),
        ({"FALKORDB_PORT": "70000"}, "FALKORDB_PORT"),
        ({"VECTOR_SIZE": "0"}, "VECTOR_SIZE"),
        ({"VECTOR_SIZE": "1024"}, "VECTOR_SIZE=1024 does not match the local model"),
        ({"EMBEDDING_PROVIDER": "placeholder"}, "EMBEDDING_PROVIDER='placeholder' is not supported"),
        ({"EMBEDDING_PROVIDER": "openai"}, "OPENAI_API_KEY is required"),
        ({"EMBEDDING_MODEL": "bge-large"}, "EMBEDDING_MODEL='bge-large' is not a local model"),
        ({"QDRANT_URL": "qdrant:6333"}, "QDRANT_URL='qdrant:6333' is not valid"),
        ({"ENRICHMENT_SIMILARITY_THRESHOLD": "2"}, "ENRICHMENT_SIMILARITY_THRESHOLD"),
        ({"SYNC_AUTO_REPAIR": "maybe"}, "SYNC_AUTO_REPAIR='maybe'"),
    ],
)
def test_invalid_values_name_the_variable(env, needle):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert needle in str(info.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"FALKORDB_PORT": "x", "QDRANT_TIMEOUT_SECONDS": "-1"})
    assert "FALKORDB_PORT" in str(info.value) and "QDRANT_TIMEOUT_SECONDS" in str(info.value)


def test_booleans_follow_automem():
    assert Settings.from_env({"SYNC_AUTO_REPAIR": "off"}).sync_auto_repair is False
    assert Settings.from_env({"SYNC_AUTO_REPAIR": "YES"}).sync_auto_repair is True
