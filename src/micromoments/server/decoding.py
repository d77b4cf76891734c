"""Request bodies as clients compress them: `Content-Encoding: gzip` / `deflate`, with a size cap.

SDKs compress batches (Segment's `gzip=True`, RudderStack by default, PostHog's `gzip`
option): the body is inflated here, in steps, and refused with 413 as soon as the inflated
bytes pass the route's limit, so a small "gzip bomb" never becomes a big allocation. Any
encoding other than gzip, deflate and identity gets 415.

>>> import gzip
>>> decode_body(gzip.compress(b'{"a": 1}'), "gzip", limit=100, what="batch")
b'{"a": 1}'
>>> try:
...     decode_body(gzip.compress(b"x" * 1000), "gzip", limit=100, what="batch")
... except Rejected as exc:
...     print(exc.status, exc.message)
413 batch is over 100 bytes once decompressed; the limit is 100
>>> try:
...     decode_body(b"...", "br", limit=100, what="batch")
... except Rejected as exc:
...     print(exc.status, exc.field)
415 Content-Encoding
"""

from __future__ import annotations

import zlib

from micromoments.server.collector import Rejected

ENCODINGS = ("gzip", "deflate", "identity")
_STEP = 64 * 1024  # inflate at most this much per call, checking the running total


def _inflate(body: bytes, wbits: int, limit: int, what: str, name: str) -> bytes:
    d = zlib.decompressobj(wbits)
    out: list[bytes] = []
    size = 0
    data = body
    try:
        while True:
            chunk = d.decompress(data, _STEP)
            size += len(chunk)
            if size > limit:
                raise Rejected(413, f"{what} is over {limit:,} bytes once decompressed; the limit is {limit:,}",
                               "body", hint="send smaller batches")
            out.append(chunk)
            data = d.unconsumed_tail
            if d.eof:
                # Concatenated gzip members (allowed by RFC 1952) continue in unused_data.
                if d.unused_data.strip(b"\x00") and wbits != -zlib.MAX_WBITS:
                    rest = d.unused_data
                    d = zlib.decompressobj(wbits)
                    data = rest
                    continue
                break
            if not data:
                tail = d.flush()
                size += len(tail)
                if size > limit:
                    raise Rejected(413, f"{what} is over {limit:,} bytes once decompressed; the limit is {limit:,}",
                                   "body", hint="send smaller batches")
                out.append(tail)
                if not d.eof:
                    raise Rejected(400, f"the {name} body is truncated", "body",
                                   hint="send the whole compressed body")
                break
    except zlib.error as exc:
        raise Rejected(400, f"the body is not valid {name} data: {exc}", "body",
                       hint=f"compress the whole body with {name}, or drop the Content-Encoding header") from None
    return b"".join(out)


def decode_body(body: bytes, encoding: str | None, *, limit: int, what: str) -> bytes:
    """`body` with its `Content-Encoding` undone; 413 past `limit` inflated bytes, 415 for unknown codings."""
    if not encoding:
        return body
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    for coding in reversed(codings):  # applied in the order listed, so undone from the last
        if coding in ("identity", ""):
            continue
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, 16 + zlib.MAX_WBITS, limit, what, "gzip")
        elif coding == "deflate":
            # RFC 9110 deflate is zlib-wrapped; some clients send raw deflate: tell them apart by the header.
            zlib_wrapped = len(body) >= 2 and (body[0] & 0x0F) == 8 and ((body[0] << 8) | body[1]) % 31 == 0
            body = _inflate(body, zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS, limit, what, "deflate")
        else:
            raise Rejected(415, f"Content-Encoding {coding!r} is not supported", "Content-Encoding",
                           hint="send gzip, deflate or no encoding")
    return body
