"""Bounded decoding of report payloads: gzip inflation with an output cap."""

from __future__ import annotations

import zlib

from ingest.errors import InvalidReport, TooLarge

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 64 * 1024


def is_gzip(data: bytes) -> bool:
    return data[:2] == GZIP_MAGIC


def gunzip(data: bytes, max_output: int) -> bytes:
    """Inflate gzip data (several members allowed), refusing output past `max_output`.

    Memory stays bounded by the cap: input is fed in chunks and each step may return at
    most what the cap still allows.
    """
    out = bytearray()
    pos = 0
    while pos < len(data):
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        view = memoryview(data)[pos:]
        offset = 0
        while not inflater.eof:
            if inflater.unconsumed_tail:
                chunk = inflater.unconsumed_tail
            elif offset < len(view):
                chunk = bytes(view[offset : offset + _CHUNK])
                offset += len(chunk)
            else:
                raise InvalidReport("truncated gzip data", "gzip")
            room = max_output - len(out)
            try:
                out += inflater.decompress(chunk, room + 1)
            except zlib.error as exc:
                raise InvalidReport(f"corrupt gzip data ({exc})", "gzip") from exc
            if len(out) > max_output:
                raise TooLarge(f"gzip inflates past the {max_output} byte cap", "gzip")
        pos += offset - len(inflater.unused_data)
        if not data[pos:].strip(b"\x00"):
            break  # trailing zero padding after the last member is tolerated
    return bytes(out)
