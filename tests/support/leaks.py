"""Requests that carry the API and admin tokens in every place and encoding a client could put
them, and a byte search for those tokens in files.

Each `Probe` is sent as written (the target is not re-encoded), so percent-encoded names and
values, `;` separators and repeated parameters reach the server exactly as listed. `expect` is
what AutoMem's parsing gives for the credentials: "through" (the token authenticates), "rejected"
(401) or None (not an auth question: unknown routes, public endpoints).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

MAX_BODY = 2 * 1024 * 1024  # automem_api.app.MAX_BODY_BYTES


def pct(text: str, lower: bool = False) -> str:
    """Every character percent-encoded (what no client needs to do, and any may)."""
    encoded = "".join(f"%{b:02X}" for b in text.encode())
    return encoded.lower() if lower else encoded


def pct_alternate(text: str) -> str:
    """Every other character percent-encoded: no scrubber can list all such spellings."""
    return "".join(f"%{ord(c):02x}" if i % 2 else c for i, c in enumerate(text))


@dataclass(frozen=True)
class Probe:
    name: str
    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    expect: str | None = None  # "through", "rejected" or None


def _json(value) -> bytes:
    return json.dumps(value).encode()


def probes(api: str, admin: str, memory_id: str) -> list[Probe]:
    bearer = {"Authorization": f"Bearer {api}"}
    both = {**bearer, "X-Admin-Token": admin}
    status = "/enrichment/status"
    basic = base64.b64encode(f"x:{api}".encode()).decode()
    return [
        # query strings: names and values, encodings, separators, repeats, case
        Probe("query", "GET", f"{status}?api_key={api}", expect="through"),
        Probe("query on a public endpoint", "GET", f"/health?api_key={api}&admin_token={admin}"),
        Probe("name %5F", "GET", f"{status}?api%5Fkey={api}", expect="through"),
        Probe("name %5f", "GET", f"{status}?api%5fkey={api}", expect="through"),
        Probe("name %61", "GET", f"{status}?%61pi_key={api}", expect="through"),
        Probe(
            "name and value fully encoded",
            "GET",
            f"{status}?{pct('api_key', lower=True)}={pct(api)}",
            expect="through",
        ),
        Probe(
            "value fully encoded, lower-case hex",
            "GET",
            f"{status}?api_key={pct(api, True)}",
            expect="through",
        ),
        Probe(
            "value partly encoded",
            "GET",
            f"{status}?api_key={pct_alternate(api)}",
            expect="through",
        ),
        Probe(
            "name and value partly encoded",
            "POST",
            f"/admin/sync?{pct_alternate('api_key')}={pct_alternate(api)}"
            f"&{pct_alternate('admin_token')}={pct_alternate(admin)}",
            body=_json({"dry_run": True}),
            expect="through",
        ),
        Probe("value with + for spaces", "GET", f"{status}?api_key=+{api}+", expect="through"),
        Probe("semicolon separator", "GET", f"{status}?x=1;api_key={api}", expect="rejected"),
        Probe("semicolon first", "GET", f"{status}?api_key={api};x=1", expect="rejected"),
        Probe("repeated", "GET", f"{status}?api_key={api}&api_key={api}", expect="through"),
        Probe(
            "repeated, other value first",
            "GET",
            f"{status}?api_key=nope&api_key={api}",
            expect="rejected",
        ),
        Probe(
            "repeated, token first", "GET", f"{status}?api_key={api}&api_key=nope", expect="through"
        ),
        Probe("upper-case name", "GET", f"{status}?API_KEY={api}", expect="rejected"),
        Probe(
            "mixed-case name",
            "GET",
            f"{status}?Api_Key={api}&Admin_Token={admin}",
            expect="rejected",
        ),
        Probe("token as a name", "GET", f"{status}?{api}", expect="rejected"),
        Probe(
            "token in another parameter",
            "GET",
            f"{status}?x={api}",
            headers=bearer,
            expect="through",
        ),
        Probe(
            "admin in query, %5F names",
            "POST",
            f"/enrichment/reprocess?api%5Fkey={api}&admin%5Ftoken={admin}&ids={memory_id}",
            expect="through",
        ),
        Probe(
            "admin in query, encoded value",
            "POST",
            f"/admin/sync?api_key={api}&admin_token={pct(admin)}",
            body=_json({"dry_run": True}),
            expect="through",
        ),
        Probe(
            "admin after a semicolon",
            "POST",
            f"/admin/sync?api_key={api};admin_token={admin}",
            expect="rejected",
        ),
        Probe(
            "admin %5F with bearer",
            "POST",
            f"/admin/sync?admin%5Ftoken={admin}",
            bearer,
            _json({"dry_run": True}),
            "through",
        ),
        Probe("wrong method", "GET", f"/admin/reembed?api_key={api}&admin_token={admin}"),
        Probe("options", "OPTIONS", f"/admin/reembed?api_key={api}"),
        # headers
        Probe("bearer", "GET", status, bearer, expect="through"),
        Probe(
            "bearer, odd case", "GET", status, {"authorization": f"bEaReR {api}"}, expect="through"
        ),
        Probe("x-api-key", "GET", status, {"X-API-Key": api}, expect="through"),
        Probe("x-api-key, spaces", "GET", status, {"x-api-key": f"  {api} "}, expect="through"),
        Probe(
            "basic auth (not a form AutoMem accepts)",
            "GET",
            status,
            {"Authorization": f"Basic {basic}"},
            expect="rejected",
        ),
        Probe("x-admin-token", "POST", "/admin/sync", both, _json({"dry_run": True}), "through"),
        Probe(
            "x-admin-api-key",
            "POST",
            "/admin/reembed",
            {"X-API-Key": api, "X-Admin-Api-Key": admin},
            _json({"batch_size": 0}),
            "through",
        ),
        Probe(
            "token as request id", "GET", status, {**bearer, "X-Request-ID": api}, expect="through"
        ),
        Probe(
            "token in an unrelated header",
            "GET",
            status,
            {**bearer, "X-Note": api},
            expect="through",
        ),
        # the path
        Probe("path", "GET", f"/{api}"),
        Probe("path, encoded", "GET", f"/{pct(api)}"),
        Probe("path as a run id", "GET", f"/admin/runs/{api}", bearer, expect="through"),
        Probe(
            "path as a run id, encoded", "GET", f"/admin/runs/{pct(api)}", bearer, expect="through"
        ),
        Probe("path under an admin route", "POST", f"/admin/reembed/{api}", both),
        Probe("path parameter with semicolon", "GET", f"{status};api_key={api}"),
        # JSON bodies
        Probe("body value", "POST", "/admin/reembed", both, _json({"batch_size": api}), "through"),
        Probe(
            "body, nested",
            "POST",
            "/admin/reembed",
            both,
            _json({"batch_size": {"token": api}}),
            "through",
        ),
        Probe(
            "body as credentials",
            "POST",
            "/admin/reembed",
            {},
            _json({"api_key": api, "admin_token": admin}),
            "rejected",
        ),
        Probe("body key", "POST", "/admin/sync", both, _json({api: True}), "through"),
        Probe("body bool field", "POST", "/admin/sync", both, _json({"dry_run": admin}), "through"),
        Probe(
            "token as an id",
            "POST",
            "/enrichment/reprocess",
            both,
            _json({"ids": [api]}),
            "through",
        ),
        Probe(
            "token in a comma string",
            "POST",
            "/enrichment/reprocess",
            both,
            _json({"ids": f"{memory_id},{admin}"}),
            "through",
        ),
        Probe(
            "token inside an id",
            "POST",
            "/enrichment/reprocess",
            both,
            _json({"ids": [f"{memory_id}-{api}"]}),
            "through",
        ),
        Probe(
            "token in the ids query",
            "POST",
            f"/enrichment/reprocess?ids={memory_id},{api}",
            both,
            expect="through",
        ),
        Probe(
            "token beside a good id",
            "POST",
            "/enrichment/reprocess",
            both,
            _json({"ids": [memory_id], "note": api}),
            "through",
        ),
        # invalid JSON
        Probe(
            "invalid JSON, unterminated",
            "POST",
            "/enrichment/reprocess",
            both,
            f'{{"ids": "{api}'.encode(),
            "through",
        ),
        Probe("invalid JSON, bare token", "POST", "/admin/reembed", both, api.encode(), "through"),
        Probe(
            "invalid JSON, unquoted",
            "POST",
            "/admin/sync",
            both,
            f'{{"batch_size": {admin}}}'.encode(),
            "through",
        ),
        # over-long
        Probe(
            "over-long body",
            "POST",
            "/enrichment/reprocess",
            both,
            b'{"ids": "' + f"{api},".encode() * (MAX_BODY // len(api) + 10) + b'"}',
            "through",
        ),
        Probe(
            "over-long query", "GET", f"{status}?pad={'p' * 60_000}&api_key={api}", expect="through"
        ),
        Probe("over-long header", "GET", status, {**bearer, "X-Pad": api * 400}, expect="through"),
    ]


def needles(*secrets: str) -> list[bytes]:
    """Every form in which the probes put a secret on the wire."""
    found: list[bytes] = []
    for secret in secrets:
        for form in (
            secret,
            pct(secret),
            pct(secret, lower=True),
            pct_alternate(secret),
            base64.b64encode(f"x:{secret}".encode()).decode(),
        ):
            found.append(form.encode())
    return found


def leaks_in(data: bytes, secrets: list[bytes]) -> list[bytes]:
    return [s for s in secrets if s in data]


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
