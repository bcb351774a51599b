"""Secrets never reach a log or an answer's message; user values echoed in errors are clipped;
run ids in messages are cut. In process (Dagster down); the same probes go to a real stack in
tests/e2e/test_secrets_e2e.py."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid

import pytest

from automem_api.gateway import RunInfo
from automem_api.redaction import REDACTED, Redactor, ScrubSecrets, clip, short_id
from tests.support.api import ADMIN_TOKEN, API_TOKEN
from tests.support.leaks import leaks_in, needles, pct, probes

BEARER = {"Authorization": f"Bearer {API_TOKEN}"}
ADMIN = {**BEARER, "X-Admin-Token": ADMIN_TOKEN}
SECRETS = needles(API_TOKEN, ADMIN_TOKEN)


def send(client, probe):
    return client.request(probe.method, probe.target, headers=probe.headers, content=probe.body)


def test_every_probe_leaves_no_token_in_the_access_log_audit_log_or_answers(
    make_client, tmp_path, caplog
):
    client, launcher = make_client()
    sent = probes(API_TOKEN, ADMIN_TOKEN, "m1")
    with caplog.at_level(logging.INFO, logger="automem_api.access"):
        answers = [(probe, send(client, probe)) for probe in sent]

    for probe, response in answers:
        if probe.expect == "through":
            assert response.status_code not in (401, 403), (probe.name, response.text)
        elif probe.expect == "rejected":
            assert response.status_code == 401, (probe.name, response.text)
        assert not leaks_in(response.content, SECRETS), (probe.name, response.text[:300])
        assert not leaks_in(response.headers.get("x-request-id", "").encode(), SECRETS)

    access = [r.getMessage() for r in caplog.records if r.name == "automem_api.access"]
    assert len(access) == len(sent)  # one line per request: the search below saw all of them
    assert not leaks_in("\n".join(access).encode(), SECRETS)
    assert any('"GET /admin/runs/{run_id} HTTP/1.1" 404' in line for line in access)
    assert any('"GET /enrichment/status?… HTTP/1.1" 200' in line for line in access)

    audit = (tmp_path / "audit.jsonl").read_bytes()
    admin_probes = [
        p
        for p in sent
        if p.target.split("?")[0].split(";")[0]
        in ("/admin/reembed", "/admin/sync", "/enrichment/reprocess")
    ]
    assert audit.count(b"\n") == len(admin_probes) > 20
    assert not leaks_in(audit, SECRETS)
    # The calls that passed both checks reached the gateway with nothing secret in them.
    assert launcher.submits  # (re-embed and sync stop at the 409 check, Dagster being down)
    assert not leaks_in(json.dumps(launcher.submits).encode(), SECRETS)


def test_query_tokens_are_recorded_as_redacted_under_their_decoded_names(make_client):
    client, _ = make_client()
    client.post(
        f"/enrichment/reprocess?api%5Fkey={API_TOKEN}&admin%5Ftoken={ADMIN_TOKEN}"
        f"&x=1;api_key={API_TOKEN}&ids=m1"
    )
    (entry,) = client.app.state.audit.read()
    assert entry["query"] == {
        "api_key": REDACTED,
        "admin_token": REDACTED,
        "x": REDACTED,
        "ids": "m1",
    }
    assert entry["status_code"] == 503 and entry["parameters"] == {"count": 1, "ids": ["m1"]}


def test_body_values_are_recorded_only_for_known_fields(make_client):
    client, _ = make_client()
    client.post(
        "/admin/reembed",
        headers=ADMIN,
        json={"batch_size": 8, "force": "x" * 1000, "secret_field": API_TOKEN},
    )
    (entry,) = client.app.state.audit.read()
    assert entry["parameters"]["batch_size"] == 8
    assert entry["parameters"]["secret_field"] == "[unknown field, not recorded]"
    assert len(entry["parameters"]["force"]) <= 201
    assert entry["outcome"].startswith("rejected: Unknown field(s): secret_field")


def test_a_token_echoed_in_a_message_is_replaced(make_client):
    client, _ = make_client()
    response = client.post("/admin/reembed", headers=ADMIN, json={"batch_size": API_TOKEN})
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "batch_size"
    assert API_TOKEN not in response.text and f"got '{REDACTED}'" in body["message"]


def test_token_as_request_id_is_replaced_by_a_new_one(make_client):
    client, _ = make_client()
    response = client.get("/health", headers={"X-Request-ID": API_TOKEN})
    assert response.headers["x-request-id"] != API_TOKEN
    assert len(response.headers["x-request-id"]) == 32
    assert (
        client.get("/health", headers={"X-Request-ID": "req-1"}).headers["x-request-id"] == "req-1"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"batch_size": "9" * 100_000},
        {"batch_size": ["x" * 1000] * 100},
        {"x" * 100_000: 1},
        {f"k{i}": i for i in range(1000)},
    ],
    ids=["long string", "long list", "long unknown name", "many unknown names"],
)
def test_user_values_echoed_in_errors_are_length_limited(make_client, body):
    client, launcher = make_client()
    response = client.post("/admin/reembed", headers=ADMIN, json=body)
    assert response.status_code == 400
    message = response.json()["message"]
    assert len(message) <= 401, len(message)
    assert "batch_size" in message or "Unknown field" in message
    assert len(response.json()["field"]) <= 41
    assert launcher.submits == []


def test_run_ids_in_messages_are_cut_to_eight_characters(make_client):
    client, _ = make_client()
    long_id = "f" * 5000
    response = client.get(f"/admin/runs/{long_id}", headers=BEARER)
    assert response.status_code == 404
    assert response.json()["message"] == "No run 'ffffffff…' was started through this API"


def test_conflict_message_cuts_the_run_id_and_the_field_keeps_it(make_client):
    client, launcher = make_client()
    run_id = str(uuid.uuid4())
    launcher.active_runs = lambda job: [RunInfo(run_id, job, "STARTED")]
    response = client.post("/admin/reembed", headers=ADMIN, json={})
    assert response.status_code == 409
    body = response.json()
    assert body["message"] == f"A re-embed run is already started: {run_id[:8]}…"
    assert run_id not in body["message"] and body["run_id"] == run_id  # for polling
    assert launcher.submits == []


def test_redactor_replaces_every_form_and_leaves_other_text():
    token = 'tök/en+"1"'
    redactor = Redactor([token, None, ""])
    for form in (
        token,
        pct(token),
        pct(token, lower=True),
        json.dumps(token)[1:-1],
        "t%C3%B6k%2Fen%2B%221%22",
    ):
        assert redactor.scrub(f"a {form} b") == f"a {REDACTED} b", form
        assert redactor.contains_secret(form)
    assert redactor.scrub("nothing here") == "nothing here"
    assert not Redactor([]).contains_secret("anything")
    message = redactor.message(f"run {uuid.UUID(int=1)} said {token} " + "x" * 1000)
    assert message.startswith(f"run 00000000… said {REDACTED} ") and len(message) == 401
    assert clip("abc", 2) == "ab…" and short_id("12345678") == "12345678"


def test_scrub_filter_covers_arguments_objects_and_tracebacks():
    handler_filter = ScrubSecrets(Redactor([API_TOKEN]))

    class Holder:
        def __str__(self):
            return f"holder({API_TOKEN})"

    try:
        raise RuntimeError(f"bad token {API_TOKEN}")
    except RuntimeError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "got %s and %s", (API_TOKEN, Holder()), sys.exc_info()
        )
    handler_filter.filter(record)
    text = logging.Formatter().format(record)
    assert API_TOKEN not in text
    assert "got [redacted] and holder([redacted])" in text and "RuntimeError: bad token" in text


def test_cli_logging_config_scrubs_every_handler(tmp_path):
    """The exact dictConfig `automem-api` hands uvicorn, applied in a fresh interpreter."""
    code = f"""
import logging, logging.config
from automem_api.cli import log_config
from automem_api.redaction import Redactor
logging.config.dictConfig(log_config(Redactor([{API_TOKEN!r}])))
logging.getLogger("uvicorn.error").info("error log %s", {API_TOKEN!r})
logging.getLogger("automem_api.access").info("access %s", "/x?api_key={API_TOKEN}")
logging.getLogger("some.library").warning("library said {API_TOKEN}")
try:
    raise ValueError({API_TOKEN!r})
except ValueError:
    logging.getLogger("uvicorn.error").exception("boom")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert API_TOKEN not in output
    for line in (
        "error log [redacted]",
        "access /x?api_key=[redacted]",
        "library said [redacted]",
        "ValueError: [redacted]",
    ):
        assert line in output, output


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"json": {"ids": ["m1", API_TOKEN]}},
        {"json": {"ids": f"m1,x{ADMIN_TOKEN}x"}},
        {"params": {"ids": f"m1,{API_TOKEN}"}},
        {"json": {"ids": ["sk-provider-key-123456"]}},
    ],
    ids=["list", "comma string", "query", "provider key"],
)
def test_an_id_holding_a_configured_credential_is_refused(make_client, request_kwargs):
    client, launcher = make_client(settings_env={"OPENAI_API_KEY": "sk-provider-key-123456"})
    response = client.post("/enrichment/reprocess", headers=ADMIN, **request_kwargs)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "ids" and "contains a configured credential" in body["message"]
    assert API_TOKEN not in response.text and "sk-provider" not in response.text
    assert launcher.submits == []
