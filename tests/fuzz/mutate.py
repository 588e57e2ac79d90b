"""Hypothesis strategies that break real inputs the way hostile or damaged files are broken: bytes truncated,
flipped, inserted or deleted; JSON fields dropped, retyped, nested deep, made huge; invalid UTF-8, lone surrogates,
NUL bytes and path tricks."""

from __future__ import annotations

import json
import re

from hypothesis import strategies as st

PATH_TRICKS = ["../x", "../../../../etc/hostname", "/etc/hostname", "a/../../b", "..", ".", "", "C:\\x", "a\\b",
               "%2e%2e/x", "x?y", "x#y", "model.onnx", "tokenizer.json/", "\x00", "a\x00b", "~/x", "//x", "x/",
               "manifest.json"]
NASTY_TEXT = st.one_of(st.sampled_from(PATH_TRICKS + ["\ud800", "a\udcffb", "\ufeff", "\u202e", "é" * 300, "NaN",
                                                      "1e999", "-1", "0", "null", "true", "[]", "{}"]),
                       st.text(max_size=40))
NASTY_NUMBER = st.one_of(st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, 2**63, 2**64 + 1, -(2**63), 10**30, 1.5,
                                          0.0, -0.0, 1e308, float("inf"), float("-inf"), float("nan"), 3.0]),
                         st.integers(), st.floats())


_DEEP: dict[str, tuple[int, object]] = {}  # placeholder -> (depth, leaf): dump_json writes it as nested lists


def deep(depth: int, leaf=0) -> str:
    """A placeholder for `leaf` in a list nested `depth` deep: json.dumps (like every recursive walker, the harness's
    own included) cannot write 50,000 levels, so dump_json writes the brackets as text."""
    token = f"@@deep{len(_DEEP)}@@"
    _DEEP[token] = (depth, leaf)
    return token


def _expand(text: str) -> str:
    def nested(match):
        depth, leaf = _DEEP.get(match.group(0)[1:-1], (1, 0))
        return "[" * depth + _expand(json.dumps(leaf)) + "]" * depth

    return re.sub(r'"@@deep\d+@@"', nested, text)


NASTY_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), NASTY_NUMBER, NASTY_TEXT,
              st.integers(2, 20000).map(deep)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(NASTY_TEXT, inner, max_size=4)),
    max_leaves=8)


def _paths(doc, prefix=(), limit=400):
    """Every (path to a node) of a JSON document, breadth-first, at most `limit`."""
    out, queue = [], [(prefix, doc)]
    while queue and len(out) < limit:
        path, node = queue.pop(0)
        out.append(path)
        if isinstance(node, dict):
            queue += [(path + (k,), v) for k, v in node.items()]
        elif isinstance(node, list):
            queue += [(path + (i,), v) for i, v in enumerate(node[:20])]
    return out


def mutate_json(draw, doc):
    """`doc` (parsed JSON, copied) with 1-3 mutations: a node dropped, retyped, nested deep, or a key added."""
    _DEEP.clear()
    doc = json.loads(json.dumps(doc))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["drop", "retype", "retype", "nest", "add"]))
        if not path:
            if op in ("retype", "nest"):
                doc = draw(NASTY_VALUE) if op == "retype" else deep(draw(st.integers(2, 50000)), doc)
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        if op == "drop":
            del parent[key]
        elif op == "retype":
            parent[key] = draw(NASTY_VALUE)
        elif op == "nest":
            parent[key] = deep(draw(st.integers(1, 50000)), parent[key])
        elif isinstance(parent[key], dict):
            parent[key][draw(NASTY_TEXT)] = draw(NASTY_VALUE)
        else:
            parent[key] = draw(NASTY_VALUE)
    return doc


def dump_json(draw, doc) -> bytes:
    """JSON text as bytes: ASCII-escaped or raw UTF-8, where a lone surrogate becomes invalid UTF-8 bytes."""
    text = _expand(json.dumps(doc, ensure_ascii=draw(st.booleans())))
    return text.encode("utf-8", "surrogatepass")


def mutate_bytes(draw, data: bytes, max_ops: int = 3) -> bytes:
    """`data` with 1-`max_ops` byte-level mutations: truncate, flip a bit, insert or delete bytes, splice in deep
    nesting, a huge number, NUL or invalid UTF-8."""
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(["truncate", "flip", "flip", "insert", "delete", "splice"]))
        at = draw(st.integers(0, len(data))) if data else 0
        if op == "truncate":
            data = data[:at]
        elif op == "flip" and data:
            at = min(at, len(data) - 1)
            data = data[:at] + bytes([data[at] ^ (1 << draw(st.integers(0, 7)))]) + data[at + 1:]
        elif op == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
        elif op == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 64)):]
        else:
            piece = draw(st.sampled_from([b"[" * 100000, b"{\"a\":" * 50000, b"9" * 5000, b"1e99999", b"\x00",
                                          b"\xff\xfe", b"\xed\xa0\x80", b"\xc3", b"NaN", b"-Infinity", b"\r\n",
                                          b"\"../../x\"", b"\t", b"\"", b","]))
            data = data[:at] + piece + data[at:]
    return data


def assert_one_line(error: BaseException, *, prefix: str | None = None) -> None:
    """The documented error: one non-empty line (and, where given, starting with `prefix`)."""
    text = str(error)
    assert text.strip(), f"{type(error).__name__} with an empty message"
    assert "\n" not in text and "\r" not in text, f"{type(error).__name__} spans lines: {text[:500]!r}"
    assert "Traceback" not in text, text[:500]
    if prefix is not None:
        assert text.startswith(prefix), text[:300]
