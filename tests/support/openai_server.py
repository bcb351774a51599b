"""A local server speaking the OpenAI embeddings protocol (POST /v1/embeddings).

It stands in for the paid service only: the vectors are real embeddings from the project's
local static model, resized to the requested ``dimensions`` (tiled, then L2-normalised), so
a store written through it holds meaningful vectors. Faults can be injected: per-request
latency, scripted 429 (with Retry-After) and 5xx answers, and failures for any batch that
contains a marker text.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from automem_pipelines.domain.embeddings import local_provider


@dataclass
class Fault:
    status: int
    retry_after: float | None = None
    body: str = "injected fault"


@dataclass
class ServerState:
    latency: float = 0.0
    scripted: deque = field(default_factory=deque)  # Faults for the next requests, in order
    fail_marker: str | None = None  # any batch containing this text gets fail_status
    fail_status: int = 500
    requests: list = field(default_factory=list)  # (input count, dimensions, encoding, headers)
    inflight: int = 0
    max_inflight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _resize(vectors: np.ndarray, dim: int) -> np.ndarray:
    if vectors.shape[1] != dim:
        reps = -(-dim // vectors.shape[1])
        vectors = np.tile(vectors, (1, reps))[:, :dim]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype("<f4")


class _Handler(BaseHTTPRequestHandler):
    server: "OpenAIEmbeddingsServer"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        state = self.server.state
        length = int(self.headers.get("Content-Length", 0))
        try:
            request = json.loads(self.rfile.read(length))
        except ValueError:
            return self._send(400, {"error": {"message": "invalid JSON"}})
        if self.path.rstrip("/") != "/v1/embeddings":
            return self._send(404, {"error": {"message": "not found"}})
        texts = request.get("input")
        if isinstance(texts, str):
            texts = [texts]
        with state.lock:
            state.requests.append((len(texts), request.get("dimensions"), request.get("encoding_format", "float"), dict(self.headers)))
            fault = state.scripted.popleft() if state.scripted else None
            state.inflight += 1
            state.max_inflight = max(state.max_inflight, state.inflight)
        try:
            self._answer(request, texts, fault)
        finally:
            with state.lock:
                state.inflight -= 1

    def _answer(self, request: dict, texts: list[str], fault: Fault | None) -> None:
        state = self.server.state
        dim = request.get("dimensions") or self.server.default_dim
        encoding = request.get("encoding_format", "float")
        if state.latency:
            time.sleep(state.latency)
        if fault is None and state.fail_marker and any(state.fail_marker in t for t in texts):
            fault = Fault(state.fail_status)
        if fault is not None:
            headers = {"retry-after": str(fault.retry_after)} if fault.retry_after is not None else {}
            kind = "rate_limit_exceeded" if fault.status == 429 else "server_error"
            return self._send(fault.status, {"error": {"message": fault.body, "type": kind}}, headers)
        vectors = _resize(local_provider().embed(texts).vectors, dim)
        data = []
        for i, vec in enumerate(vectors):
            emb = base64.b64encode(vec.tobytes()).decode() if encoding == "base64" else vec.tolist()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = sum(len(t.split()) for t in texts)
        self._send(200, {"object": "list", "data": data, "model": request.get("model"),
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


class OpenAIEmbeddingsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, default_dim: int = 256):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = ServerState()
        self.default_dim = default_dim
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def start(self) -> "OpenAIEmbeddingsServer":
        local_provider()  # load the model before the first request is timed
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def script(self, *faults: Fault) -> None:
        with self.state.lock:
            self.state.scripted.extend(faults)

    def reset(self) -> None:
        with self.state.lock:
            self.state.scripted.clear()
            self.state.requests.clear()
            self.state.fail_marker = None
            self.state.latency = 0.0
            self.state.max_inflight = 0


if __name__ == "__main__":  # a standalone server for the benchmarks and manual checks
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    srv = OpenAIEmbeddingsServer().start()
    srv.state.latency = args.latency
    print(srv.base_url, flush=True)
    threading.Event().wait()
