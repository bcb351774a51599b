"""The OpenAPI schema tells the truth: for each admin endpoint, what its request schema says
about each field is what the API accepts and refuses at the boundaries."""

from __future__ import annotations

import pytest

from automem_pipelines.constants import MAX_BATCH_SIZE
from automem_pipelines.domain.params import MAX_LIMIT
from tests.support.api import ADMIN_TOKEN, API_TOKEN

ADMIN = {"Authorization": f"Bearer {API_TOKEN}", "X-Admin-Token": ADMIN_TOKEN}
ACCEPTED = 503  # through validation: Dagster is down in these tests


def _body_schema(schema: dict, path: str) -> dict:
    content = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    ref = content["schema"]["$ref"].rsplit("/", 1)[-1]
    return schema["components"]["schemas"][ref]


def _integer(prop: dict) -> dict:
    """The integer alternative of a property (`limit` is integer or null)."""
    options = prop.get("anyOf", [prop])
    (found,) = [o for o in options if o.get("type") == "integer"]
    return found


@pytest.fixture
def api(make_client):
    client, launcher = make_client()
    return client, launcher, client.get("/openapi.json").json()


@pytest.mark.parametrize("path", ["/admin/reembed", "/admin/sync"])
def test_integer_bounds_in_the_schema_are_the_api_bounds(api, path):
    client, launcher, schema = api
    body_schema = _body_schema(schema, path)
    assert body_schema["additionalProperties"] is False
    integers = {
        name: _integer(p) for name, p in body_schema["properties"].items() if "integer" in str(p)
    }
    assert "batch_size" in integers
    for name, prop in integers.items():
        low, high = int(prop["minimum"]), int(prop["maximum"])
        for value, code in (
            (low, ACCEPTED),
            (high, ACCEPTED),
            (low - 1, 400),
            (high + 1, 400),
            (float(low), 400),
        ):
            response = client.post(path, headers=ADMIN, json={name: value})
            assert response.status_code == code, (name, value, response.text)
            if code == 400:
                assert response.json()["field"] == name
    assert int(integers["batch_size"]["maximum"]) == MAX_BATCH_SIZE
    if path == "/admin/reembed":
        assert (int(integers["limit"]["minimum"]), int(integers["limit"]["maximum"])) == (
            1,
            MAX_LIMIT,
        )


@pytest.mark.parametrize("path", ["/admin/reembed", "/admin/sync"])
def test_booleans_in_the_schema_are_strict_in_the_api(api, path):
    client, _, schema = api
    props = _body_schema(schema, path)["properties"]
    booleans = [name for name, p in props.items() if p.get("type") == "boolean" and name != "wait"]
    assert booleans
    for name in booleans:
        assert client.post(path, headers=ADMIN, json={name: True}).status_code == ACCEPTED
        for bad in ("true", 1, None):
            response = client.post(path, headers=ADMIN, json={name: bad})
            assert response.status_code == 400 and response.json()["field"] == name, (name, bad)


def test_reprocess_schema_documents_the_id_forms(api):
    _, _, schema = api
    ids = _body_schema(schema, "/enrichment/reprocess")["properties"]["ids"]
    kinds = {o.get("type") for o in ids["anyOf"]}
    assert kinds == {"array", "string", "null"}
    (array,) = [o for o in ids["anyOf"] if o.get("type") == "array"]
    assert array["items"]["maxLength"] == 256
    params = schema["paths"]["/enrichment/reprocess"]["post"]["parameters"]
    assert [p["name"] for p in params if p["in"] == "query"] == ["ids"]


def test_docs_page_is_served(api):
    client, _, _ = api
    assert client.get("/docs").status_code == 200
