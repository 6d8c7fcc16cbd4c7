"""Caps on everything an untrusted report can make us allocate."""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    max_compressed: int = 10 * MB
    """Largest raw input (a POST body, a gzip file, an email)."""
    max_decompressed: int = 50 * MB
    """Largest JSON a gzip may inflate to."""
    max_string: int = 16 * 1024
    """Longest string value (characters)."""
    max_policies: int = 10_000
    max_failure_details: int = 100_000
    """Per policy."""
    max_policy_lines: int = 1_000
    """Entries in `policy-string` and `mx-host`."""
    max_mime_parts: int = 200


DEFAULT_LIMITS = Limits()
