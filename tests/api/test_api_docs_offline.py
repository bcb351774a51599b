"""The OpenAPI pages work with no network: /docs and /redoc reference only the API's own URLs,
and each of those answers 200 with the script, style sheet or icon it stands for."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest


class _References(HTMLParser):
    """Every URL a page loads: <script src>, <link href>, <img src>, and the quoted URLs in
    its inline scripts (Swagger UI's `url: '/openapi.json'`)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name in ("src", "href"):
            if attributes.get(name):
                self.urls.append(attributes[name])
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.urls += re.findall(r"""['"]((?:https?:)?//[^'"]+|/[^'"\s]*)['"]""", data)


def references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls


def test_the_parser_sees_a_cdn_reference():
    """The check below would catch FastAPI's default page (its assets on a CDN)."""
    from fastapi.openapi.docs import get_swagger_ui_html

    html = get_swagger_ui_html(openapi_url="/openapi.json", title="t").body.decode()
    assert any(urlsplit(url).netloc for url in references(html))


EXPECTED = {
    "/docs": {".js": "javascript", ".css": "text/css", ".png": "image/png"},
    "/redoc": {".js": "javascript", ".png": "image/png"},
}


@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_docs_pages_load_only_local_assets(make_client, page):
    client, _ = make_client()
    response = client.get(page)
    assert response.status_code == 200
    urls = references(response.text)
    assert urls, "the page references nothing"
    remote = [url for url in urls if urlsplit(url).scheme or urlsplit(url).netloc]
    assert remote == [], f"{page} loads from another host: {remote}"
    kinds = {}
    for url in urls:
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert answer.content, url
        kinds[url.rsplit(".", 1)[-1]] = answer.headers["content-type"]
    for suffix, content_type in EXPECTED[page].items():
        assert content_type in kinds[suffix.lstrip(".")], (suffix, kinds)
    assets = [url for url in urls if url.endswith((".js", ".css"))]
    assert all(len(client.get(url).content) > 100_000 for url in assets)  # the real bundles
