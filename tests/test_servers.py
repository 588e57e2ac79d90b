"""The example HTTP servers (Python and Node) under ordinary load and hostile clients, on 127.0.0.1 only."""

import json
import socket
import time

import pytest

from benchmarks.server_load import post, run_load, running_server


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
