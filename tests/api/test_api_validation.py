"""Every bad body → 400 naming the field, and no run attempted; AutoMem's accepted id forms."""

from __future__ import annotations

import json

import pytest

from automem_api.cli import main
from automem_api.config import ApiConfig, ApiConfigError, check_safe_bind
from tests.support.api import ADMIN_TOKEN, API_TOKEN

ADMIN = {"Authorization": f"Bearer {API_TOKEN}", "X-Admin-Token": ADMIN_TOKEN}

BAD_REEMBED = [
    ({"batch_size": "abc"}, "batch_size"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": -1}, "batch_size"),
    ({"batch_size": 2049}, "batch_size"),
    ({"batch_size": 1.5}, "batch_size"),
    ({"batch_size": True}, "batch_size"),
    ({"batch_size": None}, "batch_size"),
    ({"limit": 0}, "limit"),
    ({"limit": "5"}, "limit"),
    ({"limit": -3}, "limit"),
    ({"limit": 10**30}, "limit"),
    ({"force": "false"}, "force"),
    ({"force": 1}, "force"),
    ({"wait": "yes"}, "wait"),
    ({"batchsize": 5}, "batchsize"),
]
BAD_SYNC = [
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": "32"}, "batch_size"),
    ({"dry_run": "true"}, "dry_run"),
    ({"dry_run": 0}, "dry_run"),
    ({"recover_orphans": "no"}, "recover_orphans"),
    ({"wait": 1}, "wait"),
    ({"dryrun": True}, "dryrun"),
]
BAD_IDS = [
    ({}, "No memory ids provided"),
    ({"ids": []}, "No memory ids provided"),
    ({"ids": ""}, "No memory ids provided"),
    ({"ids": " , ,"}, "No memory ids provided"),
    ({"ids": None}, "No memory ids provided"),
    ({"ids": [1, 2]}, "ids[0] must be a non-empty string"),
    ({"ids": ["a", ""]}, "ids[1] must be a non-empty string"),
    ({"ids": {"a": 1}}, "ids must be a list of strings"),
    ({"ids": 7}, "ids must be a list of strings"),
    ({"ids": ["x" * 300]}, "at most 256 characters"),
    ({"ids": ["a"], "force": True}, "Unknown field(s): force"),
]
NOT_AN_OBJECT = [b"not json", b'{"batch_size": ', b"[1, 2]", b'"text"', b"7", b"[" * 100_000]


@pytest.fixture
def api(make_client):
    return make_client()


@pytest.mark.parametrize("body,field", BAD_REEMBED, ids=[str(b) for b, _ in BAD_REEMBED])
def test_reembed_rejects_bad_values(api, body, field):
    client, launcher = api
    response = client.post("/admin/reembed", headers=ADMIN, json=body)
    assert response.status_code == 400, response.text
    assert field in response.json()["message"]
    assert response.json()["field"] == field
    assert launcher.submits == []


@pytest.mark.parametrize("body,field", BAD_SYNC, ids=[str(b) for b, _ in BAD_SYNC])
def test_sync_rejects_bad_values(api, body, field):
    client, launcher = api
    response = client.post("/admin/sync", headers=ADMIN, json=body)
    assert response.status_code == 400, response.text
    assert field in response.json()["message"]
    assert launcher.submits == []


@pytest.mark.parametrize("body,message", BAD_IDS, ids=[str(b)[:30] for b, _ in BAD_IDS])
def test_reprocess_rejects_empty_or_malformed_ids(api, body, message):
    client, launcher = api
    response = client.post("/enrichment/reprocess", headers=ADMIN, json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["message"]
    assert launcher.submits == []


@pytest.mark.parametrize("path", ["/admin/reembed", "/admin/sync", "/enrichment/reprocess"])
@pytest.mark.parametrize("raw", NOT_AN_OBJECT, ids=lambda r: r[:12].decode())
def test_non_json_or_non_object_bodies_are_400(api, path, raw):
    client, launcher = api
    response = client.post(path, headers={**ADMIN, "Content-Type": "application/json"}, content=raw)
    assert response.status_code == 400, response.text
    assert "JSON object" in response.json()["message"]
    assert launcher.submits == []


def test_reprocess_accepts_automem_id_forms(api):
    """A list, a comma string, or ?ids= — stripped, deduplicated, sorted (AutoMem's answer)."""
    client, launcher = api
    client.post("/enrichment/reprocess", headers=ADMIN, json={"ids": [" b", "a", "b "]})
    client.post("/enrichment/reprocess", headers=ADMIN, json={"ids": "b, a,,b"})
    client.post("/enrichment/reprocess", headers=ADMIN, params={"ids": "b,a"})
    configs = [cfg["ops"]["select_memories"]["config"] for _, cfg, _ in launcher.submits]
    assert configs == [{"ids": ["a", "b"], "forced": True}] * 3


def test_empty_body_means_defaults(api):
    """AutoMem treats a missing body as {}: the call goes through validation to Dagster."""
    client, _ = api
    response = client.post("/admin/reembed", headers=ADMIN)
    assert response.status_code == 503


def test_safe_bind_refuses_open_api_beyond_loopback(make_settings):
    settings = make_settings()
    for host in ("127.0.0.1", "::1", "localhost"):
        check_safe_bind(ApiConfig(settings=settings, api_token=None, admin_token=None, host=host))
    with pytest.raises(ApiConfigError, match="AUTOMEM_API_TOKEN"):
        check_safe_bind(
            ApiConfig(settings=settings, api_token=None, admin_token=None, host="0.0.0.0")
        )
    check_safe_bind(ApiConfig(settings=settings, api_token="t", admin_token=None, host="0.0.0.0"))
    check_safe_bind(
        ApiConfig(
            settings=settings,
            api_token=None,
            admin_token=None,
            host="0.0.0.0",
            allow_unauthenticated=True,
        )
    )


def test_cli_refuses_to_start_open_on_all_interfaces(monkeypatch, capsys, data_dir):
    monkeypatch.setenv("AUTOMEM_DATA_DIR", str(data_dir))
    monkeypatch.delenv("AUTOMEM_API_TOKEN", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["--host", "0.0.0.0", "--port", "1"])
    assert exit_info.value.code == 2
    assert "--allow-unauthenticated" in capsys.readouterr().err


def test_config_from_env_reads_automem_names(data_dir):
    env = {
        "AUTOMEM_DATA_DIR": str(data_dir),
        "AUTOMEM_API_TOKEN": " t1 ",
        "ADMIN_API_TOKEN": "",
        "AUTOMEM_API_ADMIN_RATE_LIMIT": "5/30",
        "DAGSTER_WEBSERVER_URL": "http://10.0.0.2:3070",
    }
    config = ApiConfig.from_env(env)
    assert config.api_token == "t1" and config.admin_token is None  # empty = unset
    assert (config.admin_rate_limit.calls, config.admin_rate_limit.window_seconds) == (5, 30.0)
    assert (config.dagster_hostname, config.dagster_port) == ("10.0.0.2", 3070)
    assert config.host == "127.0.0.1"
    with pytest.raises(ApiConfigError, match="AUTOMEM_API_ADMIN_RATE_LIMIT"):
        ApiConfig.from_env({**env, "AUTOMEM_API_ADMIN_RATE_LIMIT": "lots"})


def test_oversized_body_is_413(api):
    client, launcher = api
    response = client.post(
        "/enrichment/reprocess", headers=ADMIN, content=b'{"ids": "' + b"a," * 1_100_000 + b'"}'
    )
    assert response.status_code == 413
    assert launcher.submits == []


def test_the_api_never_imports_jobs():
    """The API talks to Dagster over HTTP only: importing it loads no job, op or Definitions."""
    import subprocess
    import sys

    code = (
        "import sys, automem_api.app, automem_api.cli; "
        "bad = [m for m in sys.modules if m.startswith(('automem_pipelines.definitions', "
        "'automem_pipelines.jobs', 'automem_pipelines.ops', 'automem_pipelines.sensors', "
        "'automem_pipelines.schedules', 'automem_pipelines.resources'))]; print(bad); "
        "sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


# Control (C0, DEL, C1), format (zero-width, bidi override), line separators, a lone surrogate.
BAD_ID_CHARS = [
    "\x00",
    "\n",
    "\t",
    "\r",
    "\x1f",
    "\x7f",
    "\x85",
    "\u2028",
    "\u202e",
    "\u200b",
    "\ud800",
]


def _reprocess_forms(ids: list[str]):
    """The three forms AutoMem accepts: a JSON list, a JSON comma string, ?ids=."""
    from urllib.parse import quote

    yield "body list", {"json": {"ids": ids}}
    yield "body string", {"json": {"ids": ",".join(ids)}}
    if not any("\ud800" <= c <= "\udfff" for i in ids for c in i):  # not encodable in a URL
        yield "query", {"params": None, "url_query": "ids=" + quote(",".join(ids), safe=",")}


def _post_reprocess(client, form: dict):
    url = "/enrichment/reprocess"
    if "url_query" in form:
        return client.post(f"{url}?{form['url_query']}", headers=ADMIN)
    body = json.dumps(form["json"]).encode()  # ASCII escapes: a lone surrogate stays sendable
    return client.post(url, headers={**ADMIN, "Content-Type": "application/json"}, content=body)


@pytest.mark.parametrize("char", BAD_ID_CHARS, ids=lambda c: f"U+{ord(c):04X}")
def test_reprocess_refuses_ids_with_control_characters_in_every_form(api, char):
    client, launcher = api
    for form_name, form in _reprocess_forms(["good-1", f"bad{char}id", "good-2"]):
        response = _post_reprocess(client, form)
        assert response.status_code == 400, (form_name, response.text)
        body = response.json()
        assert body["field"] == "ids", form_name
        assert body["message"].startswith("ids[1] contains a control character"), body["message"]
        assert f"U+{ord(char):04X} at position 3" in body["message"]
    assert launcher.submits == []


def test_reprocess_refuses_over_long_ids_in_every_form(api):
    client, launcher = api
    for form_name, form in _reprocess_forms(["ok", "x" * 257]):
        response = _post_reprocess(client, form)
        assert response.status_code == 400, form_name
        assert response.json()["field"] == "ids"
        assert response.json()["message"] == (
            "ids[1] is 257 characters long; ids must be at most 256 characters each"
        )
    assert launcher.submits == []
    for form_name, form in _reprocess_forms(["x" * 256]):  # the maximum itself is fine
        assert _post_reprocess(client, form).status_code == 503, form_name  # Dagster is down
    assert len(launcher.submits) == 3


def test_reprocess_refuses_more_distinct_ids_than_the_maximum(make_client):
    client, launcher = make_client(max_reprocess_ids=3)
    for form_name, form in _reprocess_forms(["a", "b", "c", "d"]):
        response = _post_reprocess(client, form)
        assert response.status_code == 400, form_name
        assert response.json() == {
            **response.json(),
            "field": "ids",
            "message": "at most 3 distinct ids per request, got 4",
        }
    assert launcher.submits == []
    assert _post_reprocess(client, {"json": {"ids": ["a", "b", "c", "a", "b"]}}).status_code == 503


def test_default_id_limits_are_the_documented_ones(make_settings):
    from automem_api.ids import MAX_ID_LENGTH

    assert MAX_ID_LENGTH == 256
    assert (
        ApiConfig(settings=make_settings(), api_token=None, admin_token=None).max_reprocess_ids
        == 10_000
    )


def test_reprocess_keeps_spaces_and_unicode_letters_inside_ids(api):
    client, launcher = api
    client.post("/enrichment/reprocess", headers=ADMIN, json={"ids": [" mémoire 1 ", "id:2/3"]})
    ((_, config, _),) = launcher.submits
    assert config["ops"]["select_memories"]["config"]["ids"] == ["id:2/3", "mémoire 1"]


def test_dagster_url_with_credentials_is_refused(data_dir):
    env = {"AUTOMEM_DATA_DIR": str(data_dir), "DAGSTER_WEBSERVER_URL": "http://u:secret@h:3000"}
    with pytest.raises(ApiConfigError, match="must not carry credentials") as info:
        ApiConfig.from_env(env)
    assert "secret" not in str(info.value)
