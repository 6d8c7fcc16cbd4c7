"""Host names and MTA-STS mx patterns (RFC 8461 §3.2, §4.1): validation and matching."""

from __future__ import annotations

import re

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")


class InvalidName(ValueError):
    """A host name or mx pattern that is not valid."""


def normalise_hostname(name: str, *, what: str = "host name") -> str:
    """Lowercase, without a trailing dot, in A-labels; raises InvalidName otherwise."""
    text = name.strip().rstrip(".").lower()
    if not text:
        raise InvalidName(f"empty {what}")
    if not text.isascii():
        raise InvalidName(f"{what} {name!r}: write it in A-labels (xn--...)")
    if len(text) > 253:
        raise InvalidName(f"{what} {name!r} is longer than 253 characters")
    for label in text.split("."):
        if not _LABEL.match(label):
            raise InvalidName(
                f"{what} {name!r}: label {label!r} is not letters, digits and inner hyphens"
            )
    return text


def normalise_mx_pattern(pattern: str) -> str:
    """An exact host, or `*.` followed by a host (the wildcard is a whole leftmost label)."""
    text = pattern.strip()
    if text.startswith("*."):
        rest = normalise_hostname(text[2:], what="mx pattern")
        if "." not in rest:
            raise InvalidName(
                f"mx pattern {pattern!r}: a wildcard needs at least two labels after *."
            )
        return "*." + rest
    if "*" in text:
        raise InvalidName(
            f"mx pattern {pattern!r}: a wildcard may only be the whole leftmost label, "
            "as in *.example.com"
        )
    return normalise_hostname(text, what="mx pattern")


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 §4.1: `*.example.com` matches `mx.example.com`, not `example.com` nor
    `a.b.example.com`; otherwise the names must be equal (case-insensitive)."""
    host = host.rstrip(".").lower()
    pattern = pattern.rstrip(".").lower()
    if pattern.startswith("*."):
        suffix = pattern[1:]
        first = host[: -len(suffix)] if host.endswith(suffix) else ""
        return bool(first) and "." not in first
    return host == pattern
