"""A local server speaking the OpenAI embeddings protocol (POST /v1/embeddings).

Request ``{"model", "input": str | [str], "dimensions"?, "encoding_format"?: "float" | "base64"}``;
answer ``{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model",
"usage": {"prompt_tokens", "total_tokens"}}``; errors ``{"error": {"message", "type"}}``.
Without ``dimensions`` the model's native size is used (``model_dims``, else ``default_dim``).
Vectors and faults: see ``embedding_server`` and ``embedding_models``.
"""

from __future__ import annotations

import base64
import threading

from .embedding_server import EmbeddingTestServer, Fault, ProtocolError, Request, Route, texts_of

__all__ = ["Fault", "OpenAIEmbeddingsServer"]


class OpenAIEmbeddingsServer(EmbeddingTestServer):
    def __init__(self, default_dim: int = 256, **kw):
        super().__init__(default_dim=default_dim, **kw)
        self.routes["/v1/embeddings"] = Route(self._parse, self._respond)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def error(self, handler, status, message, headers=None) -> None:
        kind = {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(status, "server_error")
        if 400 <= status < 500 and status not in (401, 429):
            kind = "invalid_request_error"
        handler.send_json(status, {"error": {"message": message, "type": kind}}, headers)

    def _parse(self, path: str, body: dict, headers: dict) -> Request:
        texts = texts_of(body.get("input"), "input")
        dims = body.get("dimensions")
        if dims is not None and (not isinstance(dims, int) or dims < 1):
            raise ProtocolError(400, "dimensions must be a positive integer")
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise ProtocolError(400, "encoding_format must be float or base64")
        return Request(path, body.get("model"), texts, dims, encoding, headers, body)

    def _respond(self, handler, request: Request, vectors, tokens: int) -> None:
        data = []
        for i, vec in enumerate(vectors):
            if request.encoding == "base64":
                emb = base64.b64encode(vec.astype("<f4").tobytes()).decode()
            else:
                emb = vec.tolist()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        handler.send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": request.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )


LATENCY_PATH = "/control/latency"  # standalone server only: POST {"seconds": x}


def add_latency_control(srv: OpenAIEmbeddingsServer) -> None:
    """Let another process set the server's latency (a benchmark's rounds at 0 and 150 ms)."""

    def parse(path: str, body: dict, headers: dict) -> Request:
        seconds = body.get("seconds")
        if not isinstance(seconds, (int, float)) or not 0 <= seconds <= 60:
            raise ProtocolError(400, "seconds must be a number from 0 to 60")
        srv.state.latency = float(seconds)
        return Request(path, None, [], None, None, headers, body)

    def respond(handler, request: Request, vectors, tokens: int) -> None:
        handler.send_json(200, {"latency": srv.state.latency})

    srv.routes[LATENCY_PATH] = Route(parse, respond)


if __name__ == "__main__":  # a standalone server for the benchmarks and manual checks
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--default-dim", type=int, default=256)
    args = parser.parse_args()
    srv = OpenAIEmbeddingsServer(default_dim=args.default_dim)
    add_latency_control(srv)
    srv.start()
    srv.state.latency = args.latency
    print(srv.base_url, flush=True)
    threading.Event().wait()
