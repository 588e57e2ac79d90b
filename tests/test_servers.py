"""The example HTTP servers (Python and Node) under ordinary load and hostile clients, on 127.0.0.1 only."""

import json
import socket
import time
from pathlib import Path

import pytest

from benchmarks.server_load import BODY, post, run_load, running_server


@pytest.fixture(params=["python", "node"])
def server(request, tiny_bundles):
    if request.param == "node":
        from tests.test_runtime import _node_available

        if not _node_available():
            pytest.skip("node and export/node/node_modules are needed (cd export/node && npm ci)")
    with running_server(request.param, tiny_bundles["bilstm-dynamic"], read_timeout_s=1) as (port, proc):
        yield request.param, port, proc


def _raw(port, data: bytes, timeout=10) -> bytes:
    """Send raw bytes, return what the server answers before it closes (or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (socket.timeout, ConnectionResetError):
            pass
    return b"".join(chunks)


def test_a_burst_of_2000_requests_200_at_a_time_all_answered(server):
    _, port, _ = server
    result = run_load(port)
    assert result["failed"] == 0, result


def test_hostile_requests_get_clear_answers_and_the_server_lives_on(server):
    kind, port, proc = server
    assert post(port, b"{not json")[0] == 400
    assert post(port, b'{"texts": 5}')[0] == 400
    assert post(port, b'{"pairs": ["x"]}')[1] == {"error": 'the body needs "texts": a string or a list of strings'}
    assert post(port, json.dumps({"texts": ["x"] * 2000}).encode())[0] == 413
    # a huge declared body is refused before it is read
    answer = _raw(port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 52428800\r\n\r\n" + b"{" * 1000)
    assert answer.startswith(b"HTTP/1.1 413") or answer.startswith(b"HTTP/1.0 413"), answer[:80]
    # a negative or missing length
    assert b" 400 " in _raw(port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}")[:20]
    missing = _raw(port, b"POST /predict HTTP/1.0\r\nHost: x\r\n\r\n")
    assert missing[:12] in (b"HTTP/1.0 411", b"HTTP/1.1 411"), missing[:80]
    # a body shorter than its Content-Length: the client is dropped after the read timeout, not waited on forever
    started = time.perf_counter()
    short = _raw(port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"texts\": ", timeout=15)
    assert time.perf_counter() - started < 12 and (short == b"" or short[9:12] in (b"400", b"408")), short[:80]
    # and it still serves
    status, reply = post(port, b'{"texts": ["fine"]}')
    assert status == 200 and reply["predictions"][0]["label"] in ("negative", "positive")
    assert proc.poll() is None


def _rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status")
    if not status.is_file():
        pytest.skip("RSS is read from /proc (Linux)")
    return next(int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith("VmRSS:"))


# The short version of benchmarks/server_abuse.py (issue 48).
def test_slow_connections_do_not_hold_up_a_request(server):
    _, port, proc = server
    slow = []
    try:
        for _ in range(50):  # half a request line each, then nothing: a thread each in the Python server
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        started = time.perf_counter()
        status, reply = post(port, BODY, timeout=5)
        assert status == 200 and len(reply["predictions"]) == 2
        assert time.perf_counter() - started < 3
    finally:
        for s in slow:
            s.close()
    assert proc.poll() is None


def test_memory_stays_about_flat_over_a_few_hundred_requests(server):
    _, port, proc = server
    run_load(port, 100, 8)  # warm up
    before = _rss_kb(proc.pid)
    result = run_load(port, 400, 8)
    assert result["failed"] == 0, result
    assert _rss_kb(proc.pid) < before * 1.3, (before, _rss_kb(proc.pid))


def _request(body: bytes) -> bytes:
    return b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


MALFORMED = {
    "garbage": b"\x00\x01garbage\r\n\r\n",  # Python's server answered these two in HTTP/0.9: an HTML page, no status
    "http-0.9": b"POST /predict\r\n\r\n",
    "two-lengths": b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",  # Python took one
    "nested-200000": _request(b"[" * 200_000 + b"]" * 200_000),  # Python's json: a RecursionError, answered 500
    "not-utf8": _request(b'{"texts": ["\xff\xfe caf\xe9"]}'),  # Node read it as U+FFFD and answered 200
    "huge-header": b"GET /predict HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
}


def test_malformed_http_gets_a_4xx_status_line_and_the_server_lives_on(server):
    _, port, proc = server
    for name, request_bytes in MALFORMED.items():
        answer = _raw(port, request_bytes)
        assert answer[:9] in (b"HTTP/1.0 ", b"HTTP/1.1 ") and answer[9:10] == b"4", (name, answer[:120])
        status, _ = post(port, BODY)
        assert status == 200 and proc.poll() is None, name


@pytest.mark.parametrize("method, path, status", [(b"POST", b"/elsewhere", b"404"), (b"GET", b"/predict", b"404"),
                                                  (b"PUT", b"/", b"501")])
def test_a_request_refused_before_its_body_still_gets_its_answer(server, method, path, status):
    """A body sent to a path or with a method the server does not serve is read before the refusal (fuzz findings:
    a socket closed with unread data is reset, and the client could lose the answer)."""
    name, port, _ = server
    body = b'{"texts": ["' + b"x" * 30_000 + b'"]}'
    request = (method + b" " + path + b" HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(request)
            s.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        answered = reply.split(b"\r\n", 1)[0].split(b" ")[1]
        assert answered == status or (name == "node" and answered.startswith(b"4")), reply[:200]
