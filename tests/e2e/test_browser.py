"""In a real browser (Debian's chromium, headless, through Playwright) against a running stack
and API, as an operator would look: `/docs` renders its operations with no network, a running
re-embed's page in the Dagster UI shows progress events, and after a drift sync the Qdrant
asset's page shows its checks' results.

The machine has no network beyond loopback, so a page that still reached for a CDN would
render blank here; the tests also record every request the page made and assert that none
left 127.0.0.1."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from automem_pipelines.constants import VECTOR_ASSET_KEY
from automem_pipelines.domain.drift.checks import CHECK_NAMES
from automem_pipelines.domain.progress import parse_progress
from tests.e2e.test_api_e2e import E2E, POLL_LIMIT_SECONDS, running_site
from tests.support.browser import browser_page
from tests.support.openai_server import OpenAIEmbeddingsServer

pytestmark = pytest.mark.slow

MEMORIES = 1500
BATCH = 20  # 75 provider requests of LATENCY each: a run long enough to watch
LATENCY = 0.4
LOCAL = re.compile(r"^(https?|wss?)://127\.0\.0\.1(:\d+)?/|^(data|blob|about):")


@pytest.fixture(scope="module")
def provider() -> Iterator[OpenAIEmbeddingsServer]:
    server = OpenAIEmbeddingsServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def site(provider: OpenAIEmbeddingsServer) -> Iterator[E2E]:
    with running_site(
        "amw-",
        MEMORIES,
        seed=11,
        EMBEDDING_PROVIDER="openai",
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=provider.base_url,
        VECTOR_SIZE="256",
    ) as running:
        yield running


def _requests_of(page) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    return seen


def test_docs_render_their_operations_with_no_network(site: E2E):
    with browser_page() as page:
        seen = _requests_of(page)
        page.goto(site.api_url + "/docs")
        page.wait_for_selector(".opblock-summary-path")
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert {"/admin/reembed", "/admin/sync", "/health"} <= {p.strip() for p in paths}, paths
    assert seen and all(LOCAL.match(url) for url in seen), [u for u in seen if not LOCAL.match(u)]


def _intermediate_progress(text: str) -> list[dict]:
    """The re-embed chunk progress lines on the page that are not the end (done < total)."""
    found = [parse_progress(line.strip()) for line in text.splitlines()]
    return [
        p
        for p in found
        if p
        and p["phase"] == "reembed_chunk"
        and "planned_steps" not in p
        and p["done"] < p["total"]
    ]


def test_a_running_reembed_page_shows_its_progress_events(site: E2E, provider):
    provider.state.latency = LATENCY
    try:
        started = site.post("/admin/reembed", {"force": True, "batch_size": BATCH})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        with browser_page() as page:
            seen = _requests_of(page)
            page.goto(f"{site.stack.url}/runs/{run_id}")
            deadline = time.monotonic() + POLL_LIMIT_SECONDS
            shown: list[dict] = []
            while not shown and time.monotonic() < deadline:
                page.wait_for_timeout(1000)
                shown = _intermediate_progress(page.locator("body").inner_text())
            status_then = site.get(f"/admin/runs/{run_id}").json()
        assert shown, "no progress event of the running chunk step appeared on the run's page"
        assert shown[0]["total"] == MEMORIES and 0 <= shown[0]["done"] < MEMORIES
        # the page showed it while the run was going, as the API saw it then
        assert status_then["status"] in ("queued", "started"), status_then
        # and the API's run status carries the progress (read over GraphQL) while it goes
        midway = None
        while midway is None and time.monotonic() < deadline:
            status = site.get(f"/admin/runs/{run_id}").json()
            if status["status"] != "started":
                break
            progress = status["progress"]
            assert progress is not None, status
            assert set(progress) == {"phase", "done", "total", "rate_per_second", "eta_seconds"}
            if 0 < progress["done"] < progress["total"]:
                midway = progress
            time.sleep(0.3)
        assert midway is not None, f"no progress between 0 and the total while started: {status}"
        assert midway["phase"] == "reembed_chunk" and midway["total"] == MEMORIES, midway
        assert midway["rate_per_second"] > 0 and midway["eta_seconds"] > 0, midway
        assert all(LOCAL.match(url) for url in seen), [u for u in seen if not LOCAL.match(u)]
    finally:
        provider.state.latency = 0.0
    assert site.wait_run(run_id)["status"] == "success"


def test_the_qdrant_asset_page_shows_the_drift_checks_after_a_sync(site: E2E):
    site.embedded()
    gone = site.ids[0]
    with site.qdrant() as client:  # a vector lost: the sync's detection must see it
        client.delete(site.settings.qdrant.collection, points_selector=[gone])
    synced = site.post("/admin/sync", {"dry_run": True, "wait": True})
    assert synced.status_code == 200, synced.text
    with browser_page() as page:
        seen = _requests_of(page)
        page.goto(f"{site.stack.url}/assets/{'/'.join(VECTOR_ASSET_KEY)}?view=checks")
        for name in CHECK_NAMES:
            page.get_by_text(name, exact=True).first.wait_for()
        text = page.locator("body").inner_text()
    rows = {name: _row_of(text, name) for name in CHECK_NAMES}
    assert "Failed" in rows["missing_vectors"], rows
    assert all("Succeeded" in rows[n] for n in CHECK_NAMES if n != "missing_vectors"), rows
    assert all(LOCAL.match(url) for url in seen), [u for u in seen if not LOCAL.match(u)]
    site.post("/admin/sync", {"wait": True})  # the lost vector back, for the other tests


def _row_of(text: str, name: str) -> str:
    """The page's text from the check's name to the next check's name: its row in the list
    of the checks tab (the name, shown twice, then the latest result: Succeeded or Failed)."""
    lines = [line.strip() for line in text.splitlines()]
    start = lines.index(name)
    rest = lines[start + 1 :]
    end = next(
        (i for i, line in enumerate(rest) if line in CHECK_NAMES and line != name), len(rest)
    )
    return " ".join([name, *rest[:end]])
