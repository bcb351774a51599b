"""What the local embedding servers share: fault injection, request counting, vectors.

Each server (``openai_server``, ``voyage_server``, ``ollama_server``) speaks one provider's
wire protocol on 127.0.0.1 and stands in for the paid or remote service only. Vectors come from
``embedding_models.model_vectors``: they depend on the requested model name and dimension, and
AutoMem's default models reproduce the AutoMem fixture store's vectors.

Faults, per request: ``latency`` (seconds before answering); scripted ``Fault``s consumed in
order (an HTTP status with an optional Retry-After, vectors of the wrong dimension, one vector
too few, or a hang that never answers); and a ``fail_marker``: any batch containing that text
gets ``fail_fault`` (default: HTTP ``fail_status``).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from .embedding_models import model_vectors, static_model

HANG_LIMIT_SECONDS = 120.0  # a hung request is released at the latest then (or at stop/reset)


@dataclass
class Fault:
    status: int = 500
    retry_after: float | None = None
    body: str = "injected fault"
    kind: str = "status"  # "status" | "wrong_dimension" | "short" | "hang"

    @classmethod
    def wrong_dimension(cls) -> Fault:
        """Answer 200 with vectors one dimension longer than asked."""
        return cls(200, kind="wrong_dimension")

    @classmethod
    def short(cls) -> Fault:
        """Answer 200 with one vector fewer than texts."""
        return cls(200, kind="short")

    @classmethod
    def hang(cls) -> Fault:
        """Accept the request and never answer (until released by reset/stop)."""
        return cls(0, kind="hang")


@dataclass
class Request:
    path: str
    model: str | None
    texts: list[str]
    dimensions: int | None
    encoding: str | None
    headers: dict
    body: dict

    @property
    def count(self) -> int:
        return len(self.texts)

    def header(self, name: str) -> str | None:
        return {k.lower(): v for k, v in self.headers.items()}.get(name.lower())


@dataclass
class ServerState:
    latency: float = 0.0
    scripted: deque = field(default_factory=deque)  # Faults for the next requests, in order
    fail_marker: str | None = None  # any batch containing this text gets fail_fault/fail_status
    fail_status: int = 500
    fail_fault: Fault | None = None
    requests: list[Request] = field(default_factory=list)  # every request that was served
    rejected: int = 0  # requests refused before serving (bad key, invalid body, unknown model)
    inflight: int = 0
    max_inflight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)  # frees hung requests
    # called with the request's number (1, 2, ...) before it is answered: a test acts "while
    # the job embeds" (e.g. AutoMem writing a memory during a backfill)
    on_request: Callable[[int], None] | None = None

    @property
    def texts(self) -> int:
        """Texts received over all requests (answered or not)."""
        return sum(r.count for r in self.requests)


class ProtocolError(Exception):
    """A request the real service would reject (answered with ``status``)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    server: EmbeddingTestServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def send_json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        self.send_bytes(status, json.dumps(payload).encode(), "application/json", headers)

    def send_bytes(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        srv = self.server
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        route = srv.route(self.path.split("?", 1)[0].rstrip("/"))
        state = srv.state
        if route is None:
            return srv.not_found(self)
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError
            denied = srv.check_auth(self.headers)
            if denied:
                raise ProtocolError(401, denied)
            request = route.parse(self.path.split("?", 1)[0], body, dict(self.headers))
        except (ValueError, ProtocolError) as exc:
            with state.lock:
                state.rejected += 1
            if isinstance(exc, ProtocolError):
                return srv.error(self, exc.status, str(exc))
            return srv.error(self, 400, "invalid JSON body")
        with state.lock:
            state.requests.append(request)
            fault = state.scripted.popleft() if state.scripted else None
            state.inflight += 1
            state.max_inflight = max(state.max_inflight, state.inflight)
            release = state.release
            hook, number = state.on_request, len(state.requests)
        try:
            if hook is not None:
                hook(number)
            self._answer(route, request, fault, release)
        finally:
            with state.lock:
                state.inflight -= 1

    def _answer(self, route, request: Request, fault: Fault | None, release) -> None:
        srv = self.server
        state = srv.state
        if state.latency:
            time.sleep(state.latency)
        marker = state.fail_marker
        if fault is None and marker and any(marker in t for t in request.texts):
            fault = state.fail_fault or Fault(state.fail_status)
        if fault is not None and fault.kind == "hang":
            release.wait(HANG_LIMIT_SECONDS)
            self.close_connection = True
            return
        if fault is not None and fault.kind == "status":
            headers = (
                {"retry-after": str(fault.retry_after)} if fault.retry_after is not None else {}
            )
            return srv.error(self, fault.status, fault.body, headers)
        dim = request.dimensions or srv.native_dim(request.model or "")
        vectors = model_vectors(request.texts, request.model or "", dim, srv.seeds)
        if fault is not None and fault.kind == "wrong_dimension":
            vectors = np.hstack([vectors, np.zeros((len(vectors), 1), "<f4")])
        if fault is not None and fault.kind == "short":
            vectors = vectors[:-1]
        tokens = sum(len(t.split()) for t in request.texts)
        route.respond(self, request, vectors, tokens)


@dataclass
class Route:
    parse: object  # (path, body, headers) -> Request, may raise ProtocolError
    respond: object  # (handler, request, vectors, tokens) -> None


class EmbeddingTestServer(ThreadingHTTPServer):
    """Base class: subclasses register routes and say how errors look on their wire."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        default_dim: int = 256,
        seeds: Mapping[str, int] | None = None,
        model_dims: Mapping[str, int] | None = None,
        api_key: str | None = None,
    ):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = ServerState()
        self.default_dim = default_dim
        self.seeds: dict[str, int] = dict(seeds or {})  # model name -> projection seed
        self.model_dims: dict[str, int] = dict(model_dims or {})  # model -> native dimension
        self.api_key = api_key  # when set, requests must carry it
        self.routes: dict[str, Route] = {}
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    # -- what subclasses override -------------------------------------------------------
    def error(
        self, handler: _Handler, status: int, message: str, headers: dict | None = None
    ) -> None:
        handler.send_json(status, {"error": {"message": message}}, headers)

    def not_found(self, handler: _Handler) -> None:
        self.error(handler, 404, "not found")

    def check_auth(self, headers) -> str | None:
        if self.api_key is None:
            return None
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return "invalid API key"
        return None

    # -- common ------------------------------------------------------------------------
    def route(self, path: str) -> Route | None:
        return self.routes.get(path)

    def native_dim(self, model: str) -> int:
        return self.model_dims.get(model, self.default_dim)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def start(self):
        static_model()  # load the model before the first request
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.release.set()
        self.shutdown()
        self.server_close()

    def script(self, *faults: Fault | None) -> None:
        """Faults for the next requests, in order; None: answer that request normally."""
        with self.state.lock:
            self.state.scripted.extend(faults)

    def reset(self) -> None:
        with self.state.lock:
            self.state.release.set()  # free requests hung by an earlier test
            self.state.release = threading.Event()
            self.state.scripted.clear()
            self.state.requests.clear()
            self.state.rejected = 0
            self.state.fail_marker = None
            self.state.fail_fault = None
            self.state.fail_status = 500
            self.state.latency = 0.0
            self.state.max_inflight = 0
            self.state.on_request = None

    @property
    def request_count(self) -> int:
        return len(self.state.requests)

    @property
    def text_count(self) -> int:
        return self.state.texts


def texts_of(value, field_name: str) -> list[str]:
    """A single string or a list of strings, as every protocol here accepts."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(t, str) for t in value):
        return list(value)
    raise ProtocolError(400, f"{field_name} must be a string or a non-empty list of strings")
