import dagster as dg
import pytest

from automem_pipelines.settings import Settings, SettingsError


def test_defaults_match_automem():
    s = Settings.from_env({"AUTOMEM_DATA_DIR": "/tmp/x"})
    assert (s.falkordb.graph, s.qdrant.collection, s.falkordb.port) == (
        "memories",
        "memories",
        6379,
    )
    assert s.falkordb.embedded and s.qdrant.local
    assert (s.embedding.provider, s.embedding.vector_size) == ("local", 256)
    assert s.recall_excluded_types == ("MetaPattern",)
    assert (s.enrichment.max_attempts, s.enrichment.similarity_limit) == (3, 5)
    assert s.enrichment.similarity_threshold == 0.8 and s.sync.check_interval_seconds == 3600


def test_openai_is_chosen_automatically_with_a_key_and_defaults_to_1024():
    s = Settings.from_env({"OPENAI_API_KEY": "sk-x"})
    assert (s.embedding.provider, s.embedding.model, s.embedding.vector_size) == (
        "openai",
        "text-embedding-3-small",
        1024,
    )
    s = Settings.from_env({"OPENAI_API_KEY": "sk-x", "QDRANT_VECTOR_SIZE": "768"})
    assert s.embedding.vector_size == 768


def test_empty_strings_count_as_unset():
    s = Settings.from_env({"FALKORDB_HOST": "", "QDRANT_URL": " ", "VECTOR_SIZE": ""})
    assert s.falkordb.embedded and s.qdrant.local


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        (
            {"FALKORDB_PORT": "abc"},
            "FALKORDB_PORT='abc' is not valid: expected an integer from 1 to 65535",
        ),
        ({"FALKORDB_PORT": "70000"}, "FALKORDB_PORT"),
        ({"VECTOR_SIZE": "0"}, "VECTOR_SIZE"),
        ({"VECTOR_SIZE": "1024"}, "VECTOR_SIZE=1024 does not match the local model"),
        ({"EMBEDDING_PROVIDER": "openai"}, "OPENAI_API_KEY is required"),
        ({"EMBEDDING_MODEL": "minilm-l12"}, "EMBEDDING_MODEL='minilm-l12' is not a local model"),
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
    assert Settings.from_env({"SYNC_AUTO_REPAIR": "off"}).sync.auto_repair is False
    assert Settings.from_env({"SYNC_AUTO_REPAIR": "YES"}).sync.auto_repair is True


# AutoMem's choice (automem/embedding/provider_init.py), case by case: the environment an
# AutoMem deployment has → the provider, model and size it runs → the same here.
AUTOMEM_CASES = [
    # (environment, provider, model, vector size)
    ({"VOYAGE_API_KEY": "v"}, "voyage", "voyage-4", 1024),
    ({"VOYAGE_API_KEY": "v", "OPENAI_API_KEY": "o"}, "voyage", "voyage-4", 1024),
    ({"VOYAGE_API_KEY": "v", "OLLAMA_BASE_URL": "http://ollama:11434"}, "voyage", "voyage-4", 1024),
    (
        {"VOYAGE_API_KEY": "v", "VOYAGE_MODEL": "voyage-4-large", "VECTOR_SIZE": "2048"},
        "voyage",
        "voyage-4-large",
        2048,
    ),
    ({"VOYAGE_API_KEY": "v", "QDRANT_VECTOR_SIZE": "512"}, "voyage", "voyage-4", 512),
    # EMBEDDING_MODEL is OpenAI's variable: AutoMem's Voyage ignores it (issue #208's setup).
    ({"VOYAGE_API_KEY": "v", "EMBEDDING_MODEL": "voyage-4-lite"}, "voyage", "voyage-4", 1024),
    ({"OPENAI_API_KEY": "o"}, "openai", "text-embedding-3-small", 1024),
    ({"OPENAI_API_KEY": "o", "VECTOR_SIZE": "1536"}, "openai", "text-embedding-3-small", 1536),
    ({"OPENAI_API_KEY": "o", "VECTOR_SIZE": "3072"}, "openai", "text-embedding-3-large", 3072),
    (
        {
            "OPENAI_API_KEY": "o",
            "VECTOR_SIZE": "2048",
            "EMBEDDING_MODEL": "openai/text-embedding-3-small",
        },
        "openai",
        "openai/text-embedding-3-large",
        2048,
    ),
    (
        {"OPENAI_API_KEY": "o", "EMBEDDING_MODEL": "text-embedding-3-large", "VECTOR_SIZE": "1024"},
        "openai",
        "text-embedding-3-large",
        1024,
    ),
    (
        {"OPENAI_API_KEY": "o", "OLLAMA_MODEL": "nomic-embed-text"},
        "openai",
        "text-embedding-3-small",
        1024,
    ),
    # A Voyage key with a size Voyage cannot make: AutoMem's auto skips Voyage for the next.
    (
        {"VOYAGE_API_KEY": "v", "OPENAI_API_KEY": "o", "VECTOR_SIZE": "1536"},
        "openai",
        "text-embedding-3-small",
        1536,
    ),
    ({"OLLAMA_BASE_URL": "http://ollama:11434"}, "ollama", "nomic-embed-text", 1024),
    ({"OLLAMA_MODEL": "mxbai-embed-large"}, "ollama", "mxbai-embed-large", 1024),
    (
        {"OLLAMA_BASE_URL": "http://ollama:11434", "VECTOR_SIZE": "768"},
        "ollama",
        "nomic-embed-text",
        768,
    ),
    # Explicit choices win over the keys that are set.
    (
        {"EMBEDDING_PROVIDER": "voyage", "VOYAGE_API_KEY": "v", "OPENAI_API_KEY": "o"},
        "voyage",
        "voyage-4",
        1024,
    ),
    (
        {"EMBEDDING_PROVIDER": "openai", "VOYAGE_API_KEY": "v", "OPENAI_API_KEY": "o"},
        "openai",
        "text-embedding-3-small",
        1024,
    ),
    (
        {"EMBEDDING_PROVIDER": "OpenAI", "OPENAI_API_KEY": "o"},
        "openai",
        "text-embedding-3-small",
        1024,
    ),
    ({"EMBEDDING_PROVIDER": "ollama", "VOYAGE_API_KEY": "v"}, "ollama", "nomic-embed-text", 1024),
    (
        {"EMBEDDING_PROVIDER": " auto ", "OPENAI_API_KEY": "o"},
        "openai",
        "text-embedding-3-small",
        1024,
    ),
    # Our deviation: where AutoMem runs fastembed, the shipped local model.
    ({}, "local", "minilm-l6-static", 256),
    ({"EMBEDDING_PROVIDER": "local", "OPENAI_API_KEY": "o"}, "local", "minilm-l6-static", 256),
    ({"VOYAGE_API_KEY": "", "OPENAI_API_KEY": " "}, "local", "minilm-l6-static", 256),
]


@pytest.mark.parametrize(("env", "provider", "model", "dim"), AUTOMEM_CASES)
def test_provider_choice_follows_automem(env, provider, model, dim):
    s = Settings.from_env(env)
    assert (s.embedding.provider, s.embedding.model, s.embedding.vector_size) == (
        provider,
        model,
        dim,
    )


AUTOMEM_REFUSED = [
    (
        {"EMBEDDING_PROVIDER": "placeholder"},
        "EMBEDDING_PROVIDER='placeholder' is not supported: placeholder vectors are never written",
    ),
    (
        {"EMBEDDING_PROVIDER": "garbage"},
        "EMBEDDING_PROVIDER='garbage' is not supported: expected one of auto, voyage, openai, ollama, local",
    ),
    (
        {"EMBEDDING_PROVIDER": "fastembed"},
        "EMBEDDING_PROVIDER='fastembed' is not one of AutoMem's values",
    ),
    (
        {"EMBEDDING_MODEL": "BAAI/bge-small-en-v1.5"},
        "EMBEDDING_MODEL='BAAI/bge-small-en-v1.5' is not a local model: it is a fastembed model",
    ),
    ({"EMBEDDING_PROVIDER": "local", "EMBEDDING_MODEL": "bge-base-en-v1.5"}, "fastembed"),
    ({"VECTOR_SIZE": "384"}, "AutoMem runs BAAI/bge-small-en-v1.5 with fastembed"),
    ({"VECTOR_SIZE": "1024"}, "AutoMem runs BAAI/bge-large-en-v1.5 with fastembed"),
    (
        {"VOYAGE_API_KEY": "v", "VECTOR_SIZE": "768"},
        "VECTOR_SIZE=768 is not a size VOYAGE_MODEL='voyage-4' can produce: Voyage's output_dimension "
        "is one of 256, 512, 1024, 2048",
    ),
    (
        {
            "EMBEDDING_PROVIDER": "voyage",
            "VOYAGE_API_KEY": "v",
            "OPENAI_API_KEY": "o",
            "QDRANT_VECTOR_SIZE": "1536",
        },
        "QDRANT_VECTOR_SIZE=1536 is not a size VOYAGE_MODEL='voyage-4'",
    ),
    ({"EMBEDDING_PROVIDER": "voyage"}, "VOYAGE_API_KEY is required when EMBEDDING_PROVIDER=voyage"),
    (
        {"OPENAI_API_KEY": "o", "VECTOR_SIZE": "4096"},
        "VECTOR_SIZE=4096 is more than text-embedding-3-large produces: expected at most 3072",
    ),
    (
        {"VOYAGE_API_KEY": "v", "VOYAGE_BASE_URL": "api.voyageai.com/v1"},
        "VOYAGE_BASE_URL='api.voyageai.com/v1' is not valid: expected an http(s):// URL",
    ),
    ({"OLLAMA_BASE_URL": "localhost:11434"}, "OLLAMA_BASE_URL='localhost:11434' is not valid"),
    (
        {"OLLAMA_MODEL": "nomic-embed-text", "OLLAMA_TIMEOUT": "soon"},
        "OLLAMA_TIMEOUT='soon' is not valid: expected a number from 1 to 3600",
    ),
    (
        {"OLLAMA_MODEL": "nomic-embed-text", "OLLAMA_MAX_RETRIES": "-1"},
        "OLLAMA_MAX_RETRIES='-1' is not valid: expected an integer from 0 to 20",
    ),
    (
        {"OPENAI_API_KEY": "o", "OPENAI_BASE_URL": "127.0.0.1:8080"},
        "OPENAI_BASE_URL='127.0.0.1:8080'",
    ),
]


@pytest.mark.parametrize(("env", "needle"), AUTOMEM_REFUSED)
def test_provider_settings_refused_with_the_reason(env, needle):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert needle in str(info.value)


def test_the_local_fallback_says_it_deviates_from_automem():
    s = Settings.from_env({})
    assert (
        "none of VOYAGE_API_KEY, OPENAI_API_KEY, OLLAMA_BASE_URL, OLLAMA_MODEL"
        in s.embedding.selection
    )
    assert "fastembed" in s.embedding.selection
    voyage = Settings.from_env({"VOYAGE_API_KEY": "v", "OPENAI_API_KEY": "o"})
    assert voyage.embedding.selection.startswith("auto: VOYAGE_API_KEY is set → voyage")
    skipped = Settings.from_env(
        {"VOYAGE_API_KEY": "v", "OPENAI_API_KEY": "o", "VECTOR_SIZE": "3072"}
    )
    assert "VOYAGE_API_KEY is set but skipped" in skipped.embedding.selection
    assert "text-embedding-3-large, as AutoMem upgrades" in skipped.embedding.selection


def test_provider_variables_and_defaults():
    voyage = Settings.from_env({"VOYAGE_API_KEY": "v"})
    assert (voyage.embedding.voyage_api_key, voyage.embedding.voyage_base_url) == (
        "v",
        "https://api.voyageai.com/v1",
    )
    assert (voyage.embedding.max_retries, voyage.embedding.timeout_seconds) == (6, 60.0)
    proxy = Settings.from_env(
        {
            "VOYAGE_API_KEY": "v",
            "VOYAGE_BASE_URL": "http://127.0.0.1:9/v1",
            "EMBEDDING_MAX_RETRIES": "1",
            "EMBEDDING_TIMEOUT_SECONDS": "5",
        }
    )
    assert proxy.embedding.voyage_base_url == "http://127.0.0.1:9/v1"
    assert (proxy.embedding.max_retries, proxy.embedding.timeout_seconds) == (1, 5.0)

    ollama = Settings.from_env({"OLLAMA_MODEL": "nomic-embed-text"})
    assert ollama.embedding.ollama_base_url == "http://localhost:11434"
    # AutoMem's OLLAMA_TIMEOUT (30) and OLLAMA_MAX_RETRIES (2); one local server, 2 in flight.
    assert (ollama.embedding.timeout_seconds, ollama.embedding.max_retries) == (30.0, 2)
    assert ollama.embedding.max_concurrency == 2
    tuned = Settings.from_env(
        {
            "EMBEDDING_PROVIDER": "ollama",
            "OLLAMA_BASE_URL": "http://gpu:11434",
            "OLLAMA_TIMEOUT": "120",
            "OLLAMA_MAX_RETRIES": "0",
            "EMBEDDING_MAX_CONCURRENCY": "4",
        }
    )
    assert (tuned.embedding.ollama_base_url, tuned.embedding.timeout_seconds) == (
        "http://gpu:11434",
        120.0,
    )
    assert (tuned.embedding.max_retries, tuned.embedding.max_concurrency) == (0, 4)

    openai = Settings.from_env(
        {"OPENAI_API_KEY": "o", "OPENAI_BASE_URL": "http://127.0.0.1:8080/v1"}
    )
    assert (
        openai.embedding.openai_base_url == "http://127.0.0.1:8080/v1"
        and openai.embedding.max_concurrency == 16
    )


def test_resources_carry_the_choice():
    from automem_pipelines.definitions import build_resources

    s = Settings.from_env(
        {"VOYAGE_API_KEY": "v", "VOYAGE_MODEL": "voyage-4-lite", "VECTOR_SIZE": "512"}
    )
    res = build_resources(s, from_env=False)["embeddings"]
    assert (res.provider, res.model, res.vector_size, res.voyage_api_key) == (
        "voyage",
        "voyage-4-lite",
        512,
        "v",
    )
    assert res.selection == s.embedding.selection
    assert res.voyage_base_url == "https://api.voyageai.com/v1"


def test_each_resource_takes_its_fields_from_its_group():
    """Resources are built from the groups by field name: a renamed field fails here."""
    from automem_pipelines.definitions import build_resources

    s = Settings.from_env({"OPENAI_API_KEY": "o", "FALKORDB_PASSWORD": "pw", "QDRANT_API_KEY": "q"})
    res = build_resources(s, from_env=False)
    for key, group in (
        ("falkordb", s.falkordb),
        ("qdrant", s.qdrant),
        ("embeddings", s.embedding),
        ("nlp", s.enrichment),
    ):
        fields = set(type(res[key]).model_fields) - {"data_dir"}
        assert fields <= set(type(group).model_fields), key
        assert {f: getattr(res[key], f) for f in fields} == {f: getattr(group, f) for f in fields}
    assert res["sync"].excluded_types == list(s.recall_excluded_types)
    secrets = build_resources(s)  # from_env: credentials as EnvVar of their variables
    assert (
        secrets["embeddings"].openai_api_key,
        secrets["falkordb"].password,
        secrets["qdrant"].api_key,
    ) == (dg.EnvVar("OPENAI_API_KEY"), dg.EnvVar("FALKORDB_PASSWORD"), dg.EnvVar("QDRANT_API_KEY"))
    assert secrets["embeddings"].voyage_api_key is None  # unset stays unset
    assert set(s.secret_values()) == {"o", "pw", "q"}


def test_the_api_group_reads_automem_names_and_shares_the_booleans():
    s = Settings.from_env(
        {
            "AUTOMEM_API_TOKEN": " t ",
            "AUTOMEM_API_ALLOW_UNAUTHENTICATED": "on",
            "AUTOMEM_API_ADMIN_RATE_LIMIT": "0",
            "AUTOMEM_API_PORT": "9000",
        }
    )
    assert (s.api.api_token, s.api.allow_unauthenticated, s.api.port) == ("t", True, 9000)
    assert s.api.admin_rate_limit.calls == 0
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"AUTOMEM_API_ALLOW_UNAUTHENTICATED": "maybe", "AUTOMEM_API_PORT": "x"})
    assert "AUTOMEM_API_ALLOW_UNAUTHENTICATED='maybe' is not valid" in str(info.value)
    assert "AUTOMEM_API_PORT='x' is not valid: expected an integer from 1 to 65535" in str(
        info.value
    )


def test_qdrant_host_and_port_stand_for_the_url():
    assert (
        Settings.from_env({"QDRANT_HOST": "q", "QDRANT_PORT": "7000"}).qdrant.url == "http://q:7000"
    )
    assert Settings.from_env({"QDRANT_HOST": "q"}).qdrant.url == "http://q:6333"
    assert (
        Settings.from_env({"QDRANT_URL": ":memory:", "QDRANT_HOST": "q"}).qdrant.url == ":memory:"
    )
