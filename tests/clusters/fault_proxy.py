"""A small fault-injecting HTTP proxy in front of the Kubernetes API server (or, over plain HTTP,
the Hadoop ResourceManager), for tests.

Clients speak plain HTTP to ``proxy.url`` (loopback only); the proxy forwards each request over
HTTPS to the API server, verifying its CA, with the client's own ``Authorization`` header, and
logs it. Queued faults hit the next matching requests before they reach the server:

    proxy.fail(500, times=2, method="PATCH")           # answer 500 twice
    proxy.fail(429, times=1, retry_after=1)            # too many requests
    proxy.delay(3.0, times=1, path="/resourcequotas")  # slow answer
    proxy.drop(times=1, method="PATCH")                # close the connection, no answer
    proxy.answer({"items": []}, path="/pendingworkloads")  # answer 200 with this JSON body itself

``proxy.writes()`` counts the POST/PUT/PATCH/DELETE requests that reached the API server.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass
class Fault:
    kind: str  # "status", "delay", "drop" or "answer"
    times: int
    method: str | None = None
    path: str | None = None  # a regular expression searched in the request path
    status: int = 500
    seconds: float = 0.0
    retry_after: int | None = None
    body: Any = None  # "answer": the JSON answered in the server's place

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or re.search(self.path, path) is not None
        )


@dataclass
class Entry:
    method: str
    path: str
    status: int | None  # None: the connection was dropped
    fault: str = ""
    forwarded: bool = True


@dataclass
class FaultProxy:
    upstream: str
    ca_data: bytes | None
    log: list[Entry] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        target = urlsplit(self.upstream)
        self._plain = target.scheme == "http"
        self._host, self._port = target.hostname or "127.0.0.1", target.port or (80 if self._plain else 443)
        self._context = ssl.create_default_context(cadata=self.ca_data.decode() if self.ca_data else None)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- control

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        with self._lock:
            self.faults.append(Fault("status", times, method, path, status=status, retry_after=retry_after))

    def delay(
        self, seconds: float, *, times: int = 1, method: str | None = None, path: str | None = None
    ) -> None:
        with self._lock:
            self.faults.append(Fault("delay", times, method, path, seconds=seconds))

    def drop(self, *, times: int = 1, method: str | None = None, path: str | None = None) -> None:
        with self._lock:
            self.faults.append(Fault("drop", times, method, path))

    def answer(
        self, body: Any, *, times: int = 1, method: str | None = "GET", path: str | None = None
    ) -> None:
        """Answer matching requests with 200 and `body` (JSON) without asking the server: what an
        API the server does not serve here (an aggregated API without its backing server) would
        answer."""
        with self._lock:
            self.faults.append(Fault("answer", times, method, path, status=200, body=body))

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.log.clear()

    def writes(self) -> list[Entry]:
        """Write requests the API server actually received."""
        with self._lock:
            return [e for e in self.log if e.method in WRITE_METHODS and e.forwarded]

    def injected(self) -> list[Entry]:
        with self._lock:
            return [e for e in self.log if e.fault]

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- lifecycle

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The headers and the body go out in two writes: with Nagle's algorithm on, the body
            # waits for the client's delayed ACK of the headers (40 ms a request on Linux).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

            def _handle(self) -> None:
                proxy._serve(self)

            def finish(self) -> None:
                super().finish()
                upstream = getattr(self, "upstream", None)
                if upstream is not None:
                    upstream.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- serving

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    def _record(self, entry: Entry) -> None:
        with self._lock:
            self.log.append(entry)

    def _forward(
        self, handler: BaseHTTPRequestHandler, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[http.client.HTTPResponse, bytes]:
        """Send the request upstream on the client connection's own upstream connection, kept open
        across its requests (a TLS handshake per request cost more than most requests); one the
        server closed while idle is opened again once."""
        for attempt in range(2):
            connection: http.client.HTTPConnection | None = getattr(handler, "upstream", None)
            reused = connection is not None
            if connection is None:
                if self._plain:  # a plain-HTTP upstream (the Hadoop test cluster)
                    connection = http.client.HTTPConnection(self._host, self._port, timeout=60)
                else:
                    connection = http.client.HTTPSConnection(
                        self._host, self._port, context=self._context, timeout=60
                    )
                handler.upstream = connection  # type: ignore[attr-defined]
            try:
                connection.request(method, path, body=body or None, headers=headers)
                response = connection.getresponse()
                return response, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                connection.close()
                handler.upstream = None  # type: ignore[attr-defined]
                if not reused or attempt:
                    raise
            except OSError:
                connection.close()
                handler.upstream = None  # type: ignore[attr-defined]
                raise
        raise AssertionError("unreachable")

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        method, path = handler.command, handler.path
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        fault = self._take_fault(method, path)
        if fault is not None and fault.kind == "drop":
            self._record(Entry(method, path, None, "drop", forwarded=False))
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(2)
            return
        if fault is not None and fault.kind in ("status", "answer"):
            self._record(Entry(method, path, fault.status, f"{fault.kind} {fault.status}", forwarded=False))
            payload = json.dumps(
                fault.body
                if fault.kind == "answer"
                else {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "message": f"injected fault: HTTP {fault.status}",
                    "code": fault.status,
                }
            ).encode()
            handler.send_response(fault.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            if fault.retry_after is not None:
                handler.send_header("Retry-After", str(fault.retry_after))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
        try:
            response, payload = self._forward(handler, method, path, body, headers)
        except OSError:
            self._record(Entry(method, path, 502, "upstream error"))
            handler.send_error(502)
            return
        self._record(Entry(method, path, response.status, f"delay {fault.seconds}s" if fault else ""))
        # The client may be gone by now (a worker killed while its request was held): the request
        # reached the server all the same, as it would have without the proxy.
        with contextlib.suppress(OSError):
            handler.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in HOP_BY_HOP | {"content-length"}:
                    handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
