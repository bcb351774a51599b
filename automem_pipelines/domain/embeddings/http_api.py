"""Shared by the providers spoken to over plain HTTP (httpx): one client, JSON in and out."""

from __future__ import annotations

from typing import Any

from .base import EmbeddingError, RetryPolicy


class HTTPStatusFailure(Exception):
    """A non-2xx answer from a provider's HTTP API (``response`` kept for Retry-After)."""

    def __init__(self, response: Any):
        self.response = response
        self.status = response.status_code
        super().__init__(f"HTTP {self.status} from {response.request.url}: {_error_text(response)}")


def _error_text(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body))
        if isinstance(err, dict):
            err = err.get("message", err)
        return str(err)[:300]
    return str(body)[:300]


def http_verdict(exc: Exception) -> bool | None:
    import httpx

    if isinstance(exc, HTTPStatusFailure):
        return exc.status in (408, 429) or exc.status >= 500
    if isinstance(exc, httpx.TransportError):  # timeouts, refused or dropped connections
        return True
    return None


def is_json_error(response: Any) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "error" in body


class HTTPProvider:
    def __init__(self, base_url: str, headers: dict[str, str], timeout: float, retry: RetryPolicy):
        import httpx

        self.base_url = base_url.rstrip("/")
        self._retry = retry
        self._client = httpx.Client(
            timeout=timeout, headers={"User-Agent": "automem-pipelines", **headers}
        )

    def _post_once(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = self._client.post(f"{self.base_url}{path}", json=payload)
        if response.status_code >= 400:
            raise HTTPStatusFailure(response)
        try:
            body = response.json()
        except ValueError as exc:
            raise EmbeddingError(f"{path} answered something that is not JSON") from exc
        if not isinstance(body, dict):
            raise EmbeddingError(f"{path} answered JSON that is not an object")
        return body

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._retry.run(lambda: self._post_once(path, payload), http_verdict)

    def close(self) -> None:
        self._client.close()
