"""An HTTP endpoint for a kdedge bundle, standard library only, fit to copy into production.

    python serve.py BUNDLE_DIR [PORT]
    curl -s localhost:8080/predict -d '{"texts": ["a gorgeous, witty film"]}'
    # pair tasks: {"texts": [...], "pairs": [...]}

Untrusted clients are expected: a request body is refused above MAX_BODY_BYTES (413) or without a valid
Content-Length (411/400), a client that stops sending is dropped after READ_TIMEOUT_S, a burst of connections
waits in a deep listen backlog instead of being reset, and every failure is answered with a JSON error.
"""

import json
import os
import socket
import sys
from dataclasses import asdict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kdedge_runtime import Classifier

MAX_BODY_BYTES = 1 << 20  # 1 MiB: thousands of sentences
MAX_TEXTS = 1024
READ_TIMEOUT_S = float(os.environ.get("SERVE_READ_TIMEOUT_S", 10))


class RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def make_handler(classifier: Classifier):
    class Handler(BaseHTTPRequestHandler):
        timeout = READ_TIMEOUT_S  # per socket read: a slow or silent client cannot hold a thread forever
        default_request_version = "HTTP/1.0"  # a request line it cannot parse still gets a status line (not HTTP/0.9)

        def do_POST(self):
            if self.path != "/predict":
                self._discard_body()
                return self._reply(404, {"error": "POST to /predict"})
            try:
                body = self._json_body()
                if not isinstance(body, dict) or "texts" not in body:
                    raise RequestError(400, 'the body needs "texts": a string or a list of strings')
                texts = body["texts"]
                if isinstance(texts, list) and len(texts) > MAX_TEXTS:
                    raise RequestError(413, f"at most {MAX_TEXTS} texts per request, got {len(texts)}")
                predictions = classifier.predict(texts, body.get("pairs"))
            except RequestError as e:
                return self._reply(e.status, {"error": str(e)})
            except (ValueError, TypeError) as e:  # wrong types, a pair for a single-sentence model
                return self._reply(400, {"error": str(e)})
            except Exception as e:  # never a dropped connection: the client learns that the server failed
                self.log_error("predict failed: %r", e)
                return self._reply(500, {"error": "internal error"})
            predictions = predictions if isinstance(predictions, list) else [predictions]
            self._reply(200, {"predictions": [asdict(p) for p in predictions]})

        def do_GET(self):
            self._discard_body()
            self._reply(404, {"error": "POST to /predict"})

        def _discard_body(self) -> None:
            """Read a body this server will not use: closing a socket with unread data resets the connection, and
            the client can lose the answer sent just before. A body it cannot read safely closes it instead."""
            try:
                self._read_body(required=False)
            except RequestError:
                pass  # the connection is closed already

        def _read_body(self, required: bool) -> bytes:
            """The body, by its one Content-Length header; RequestError (and the connection closed, since an unread
            body must not be parsed as the next request) when that header cannot be trusted or the body is short."""
            try:
                lengths = self.headers.get_all("Content-Length")
                if not lengths:
                    if required or "Transfer-Encoding" in self.headers:
                        raise RequestError(411, "a Content-Length header is required")
                    return b""
                if not lengths[0].strip().isdigit():
                    raise RequestError(400, f"Content-Length must be a non-negative integer, not {lengths[0][:40]!r}")
                if len(lengths) > 1 or "Transfer-Encoding" in self.headers:  # which length holds is ambiguous:
                    raise RequestError(400, "one Content-Length header and no Transfer-Encoding are expected")
                length = int(lengths[0])
                if length > MAX_BODY_BYTES:
                    raise RequestError(413, f"the body is limited to {MAX_BODY_BYTES} bytes, got {length}")
                try:
                    data = self.rfile.read(length)
                except (socket.timeout, TimeoutError, OSError):
                    data = b""
                if len(data) != length:
                    raise RequestError(400, f"the body ended after {len(data)} of {length} bytes (Content-Length)")
                return data
            except RequestError:
                self.close_connection = True
                raise

        def _json_body(self):
            data = self._read_body(required=True)
            try:
                return json.loads(data or b"{}")
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise RequestError(400, f"the body is not valid JSON ({e})") from None
            except RecursionError:  # [[[[...]]]] nested deeper than Python's stack
                raise RequestError(400, "the body is not valid JSON (nested too deep)") from None

        def _reply(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                self.close_connection = True  # the client left; nothing to answer

        def send_error(self, code, message=None, explain=None):  # http.server's own refusals (a bad request line,
            if code == HTTPStatus.NOT_IMPLEMENTED and getattr(self, "headers", None) is not None:
                self._discard_body()  # an unsupported method's body (PUT, ...), read for the same reason as a 404's
            self.close_connection = True  # headers too long, ...) in JSON too, not its HTML page
            self._reply(code, {"error": message or HTTPStatus(code).phrase})

        def log_request(self, code="-", size="-"):  # a line per request is noise under load; errors still log
            pass

    return Handler


class Server(ThreadingHTTPServer):
    request_queue_size = 1024  # the listen backlog: a burst of connections waits instead of being reset
    daemon_threads = True


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python serve.py BUNDLE_DIR [PORT]")
    port = int(sys.argv[2]) if len(sys.argv) == 3 else 8080
    server = Server(("127.0.0.1", port), make_handler(Classifier(sys.argv[1])))
    print(f"serving on http://127.0.0.1:{port}/predict", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
