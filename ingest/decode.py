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
    if len(data) <= _CHUNK and (whole := _one_small_member(data, max_output)) is not None:
        return whole
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


def _one_small_member(data: bytes, max_output: int) -> bytes | None:
    """The inflated data in one call when `data` is one whole gzip member (plus zero
    padding), as reports nearly always are; None for anything else (several members,
    truncation, corruption), which the general loop then reports."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, max_output + 1)
    except zlib.error:
        return None
    if len(out) > max_output:
        raise TooLarge(f"gzip inflates past the {max_output} byte cap", "gzip")
    if inflater.eof and not inflater.unused_data.strip(b"\x00"):
        return out
    return None
