"""A local server speaking Ollama's embedding API.

* ``POST /api/embed`` ``{"model", "input": str | [str], "truncate"?, "dimensions"?,
  "keep_alive"?, "options"?}`` → ``{"model", "embeddings": [[...]], "total_duration",
  "load_duration", "prompt_eval_count"}`` (L2-normalised vectors, as Ollama returns them).
* ``POST /api/embeddings`` (the older endpoint AutoMem calls, one text per request)
  ``{"model", "prompt"}`` → ``{"embedding": [...]}`` (not normalised, as Ollama returns it).

Errors are ``{"error": "..."}``; an unknown model (when ``known_models`` is given) is a 404
``model "x" not found, try pulling it first``. ``legacy_only=True`` plays an Ollama older than
``/api/embed`` (plain-text ``404 page not found``). The native dimension is the model's
(``model_dims``, else ``default_dim`` = 768, nomic-embed-text's). Vectors and faults: see
``embedding_server`` and ``embedding_models``.
"""

from __future__ import annotations

from collections.abc import Iterable

from .embedding_server import EmbeddingTestServer, Fault, ProtocolError, Request, Route, texts_of

__all__ = ["Fault", "OllamaServer"]

LEGACY_SCALE = 3.0  # /api/embeddings answers unnormalised vectors


class OllamaServer(EmbeddingTestServer):
    def __init__(
        self,
        default_dim: int = 768,
        known_models: Iterable[str] | None = None,
        legacy_only: bool = False,
        **kw,
    ):
        super().__init__(default_dim=default_dim, **kw)
        self.known_models = set(known_models) if known_models is not None else None
        self.routes["/api/embeddings"] = Route(self._parse_legacy, self._respond_legacy)
        if not legacy_only:
            self.routes["/api/embed"] = Route(self._parse_embed, self._respond_embed)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def error(self, handler, status, message, headers=None) -> None:
        handler.send_json(status, {"error": message}, headers)

    def not_found(self, handler) -> None:
        handler.send_bytes(404, b"404 page not found", "text/plain")

    def _model(self, body: dict) -> str:
        model = body.get("model")
        if not model:
            raise ProtocolError(400, "model is required")
        if self.known_models is not None and model not in self.known_models:
            raise ProtocolError(404, f'model "{model}" not found, try pulling it first')
        return model

    def _parse_embed(self, path: str, body: dict, headers: dict) -> Request:
        model = self._model(body)
        texts = texts_of(body.get("input"), "input")
        dims = body.get("dimensions")
        if dims is not None and (not isinstance(dims, int) or dims < 1):
            raise ProtocolError(400, "dimensions must be a positive integer")
        return Request(path, model, texts, dims, None, headers, body)

    def _respond_embed(self, handler, request: Request, vectors, tokens: int) -> None:
        handler.send_json(
            200,
            {
                "model": request.model,
                "embeddings": [v.tolist() for v in vectors],
                "total_duration": 1000,
                "load_duration": 10,
                "prompt_eval_count": tokens,
            },
        )

    def _parse_legacy(self, path: str, body: dict, headers: dict) -> Request:
        model = self._model(body)
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise ProtocolError(400, "prompt must be a string")
        return Request(path, model, [prompt], None, None, headers, body)

    def _respond_legacy(self, handler, request: Request, vectors, tokens: int) -> None:
        if len(vectors) == 0:  # the "short" fault: Ollama's answer for no vector
            return handler.send_json(200, {"embedding": []})
        handler.send_json(200, {"embedding": (vectors[0] * LEGACY_SCALE).tolist()})
