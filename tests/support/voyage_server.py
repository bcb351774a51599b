"""A local server speaking Voyage AI's embeddings protocol (POST /v1/embeddings).

Request ``{"input": str | [str] (at most 128), "model", "input_type"?: null | "query" |
"document", "output_dimension"?: 256 | 512 | 1024 | 2048, "output_dtype"?: "float",
"truncation"?, "encoding_format"?: null | "base64"}`` with ``Authorization: Bearer <key>``;
answer ``{"object": "list", "data": [{"object": "embedding", "embedding", "index"}], "model",
"usage": {"total_tokens"}}``; errors ``{"detail": "..."}``. Without ``output_dimension`` the
model's default (``model_dims``, else ``default_dim`` = 1024) is used.
Vectors and faults: see ``embedding_server`` and ``embedding_models``.
"""

from __future__ import annotations

import base64

from .embedding_server import EmbeddingTestServer, Fault, ProtocolError, Request, Route, texts_of

__all__ = ["Fault", "VoyageEmbeddingsServer", "VOYAGE_MAX_TEXTS"]

VOYAGE_MAX_TEXTS = 128
VOYAGE_DIMENSIONS = (256, 512, 1024, 2048)


class VoyageEmbeddingsServer(EmbeddingTestServer):
    def __init__(self, default_dim: int = 1024, api_key: str | None = "voyage-test-key", **kw):
        super().__init__(default_dim=default_dim, api_key=api_key, **kw)
        self.routes["/v1/embeddings"] = Route(self._parse, self._respond)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def error(self, handler, status, message, headers=None) -> None:
        handler.send_json(status, {"detail": message}, headers)

    def _parse(self, path: str, body: dict, headers: dict) -> Request:
        texts = texts_of(body.get("input"), "input")
        if len(texts) > VOYAGE_MAX_TEXTS:
            raise ProtocolError(
                400, f"The max allowed number of inputs is {VOYAGE_MAX_TEXTS}, got {len(texts)}"
            )
        if not body.get("model"):
            raise ProtocolError(400, "model is required")
        input_type = body.get("input_type")
        if input_type not in (None, "query", "document"):
            raise ProtocolError(400, "input_type must be null, query or document")
        dim = body.get("output_dimension")
        if dim is not None and dim not in VOYAGE_DIMENSIONS:
            raise ProtocolError(400, f"output_dimension must be one of {list(VOYAGE_DIMENSIONS)}")
        if body.get("output_dtype", "float") != "float":
            raise ProtocolError(400, "only output_dtype float is served here")
        encoding = body.get("encoding_format")
        if encoding not in (None, "base64"):
            raise ProtocolError(400, "encoding_format must be null or base64")
        return Request(path, body["model"], texts, dim, encoding, headers, body)

    def _respond(self, handler, request: Request, vectors, tokens: int) -> None:
        data = []
        for i, vec in enumerate(vectors):
            if request.encoding == "base64":
                emb = base64.b64encode(vec.astype("<f4").tobytes()).decode()
            else:
                emb = vec.tolist()
            data.append({"object": "embedding", "embedding": emb, "index": i})
        handler.send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": request.model,
                "usage": {"total_tokens": tokens},
            },
        )
