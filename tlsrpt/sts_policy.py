"""The MTA-STS policy file (RFC 8461 §3.2): build, parse, and match MX hosts against it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from tlsrpt.hostnames import InvalidName, mx_matches, normalise_mx_pattern
from tlsrpt.records import RecordError

MAX_AGE_LIMIT = 31_557_600  # about a year, RFC 8461 §3.2
POLICY_PATH = "/.well-known/mta-sts.txt"

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}\Z")
_MAX_AGE = re.compile(r"[0-9]{1,10}\Z")
_SINGLE_KEYS = ("version", "mode", "max_age")


class Mode(StrEnum):
    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"


@dataclass(frozen=True)
class StsPolicy:
    mode: Mode
    max_age: int
    mx: tuple[str, ...]

    def text(self) -> str:
        lines = ["version: STSv1", f"mode: {self.mode}"]
        lines += [f"mx: {pattern}" for pattern in self.mx]
        lines.append(f"max_age: {self.max_age}")
        return "\n".join(lines) + "\n"

    def matching_pattern(self, host: str) -> str | None:
        return next((p for p in self.mx if mx_matches(p, host)), None)


@dataclass(frozen=True)
class PolicyReading:
    """A parsed policy file: the policy when valid, else the errors; notes list what a
    sender ignores (repeated keys, unknown keys)."""

    policy: StsPolicy | None
    errors: tuple[str, ...]
    notes: tuple[str, ...]


def policy_url(domain: str) -> str:
    return f"https://mta-sts.{domain}{POLICY_PATH}"


def parse_policy(text: str) -> PolicyReading:
    """Lines `key: value` ending in LF or CRLF; values are case-sensitive; for a repeated
    key other than mx the first wins; unknown keys are ignored."""
    errors: list[str] = []
    notes: list[str] = []
    first: dict[str, tuple[int, str]] = {}
    mx: list[str] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        line = raw.removesuffix("\r")
        key, colon, value = line.partition(":")
        value = value.strip(" \t")
        if not line.strip():
            notes.append(f"line {number} is blank")
            continue
        if not colon or not _KEY.match(key):
            errors.append(f"line {number} {line!r} is not 'key: value'")
            continue
        if key == "mx":
            try:
                mx.append(normalise_mx_pattern(value))
            except InvalidName as exc:
                errors.append(f"line {number}: {exc}")
        elif key in _SINGLE_KEYS:
            if key in first:
                notes.append(f"line {number} repeats {key}; line {first[key][0]} applies")
            else:
                first[key] = (number, value)
        elif key.lower() in (*_SINGLE_KEYS, "mx"):
            errors.append(f"line {number}: key {key!r} must be lowercase")
        else:
            notes.append(f"line {number}: unknown key {key!r} is ignored")
    mode = _mode(first, errors)
    max_age = _max_age(first, errors)
    version = first.get("version")
    if version is None:
        errors.append("no 'version: STSv1' line")
    elif version[1] != "STSv1":
        errors.append(f"line {version[0]}: version must be STSv1, not {version[1]!r}")
    if mode is not None and mode is not Mode.NONE and not mx:
        errors.append(f"mode {mode} needs at least one 'mx:' line")
    if errors or mode is None or max_age is None:
        return PolicyReading(None, tuple(errors), tuple(notes))
    return PolicyReading(StsPolicy(mode, max_age, tuple(mx)), (), tuple(notes))


def _mode(first: dict[str, tuple[int, str]], errors: list[str]) -> Mode | None:
    if "mode" not in first:
        errors.append("no 'mode:' line")
        return None
    number, value = first["mode"]
    try:
        return Mode(value)
    except ValueError:
        hint = " (values are case-sensitive)" if value.lower() in set(Mode) else ""
        errors.append(f"line {number}: mode must be enforce, testing or none, not {value!r}{hint}")
        return None


def _max_age(first: dict[str, tuple[int, str]], errors: list[str]) -> int | None:
    if "max_age" not in first:
        errors.append("no 'max_age:' line")
        return None
    number, value = first["max_age"]
    if not _MAX_AGE.match(value):
        errors.append(f"line {number}: max_age {value!r} is not a number of seconds")
        return None
    if int(value) > MAX_AGE_LIMIT:
        errors.append(f"line {number}: max_age {value} is above the limit of {MAX_AGE_LIMIT}")
        return None
    return int(value)


def build_policy(mode: Mode, mx: Sequence[str], max_age: int) -> StsPolicy:
    """A policy from user input, checked by reading its own text back."""
    if not 0 <= max_age <= MAX_AGE_LIMIT:
        raise RecordError(f"max_age {max_age} is outside 0..{MAX_AGE_LIMIT} (about a year)")
    if mode is not Mode.NONE and not mx:
        raise RecordError(f"mode {mode} needs at least one --mx HOST (or *.example.com)")
    try:
        patterns = tuple(dict.fromkeys(normalise_mx_pattern(p) for p in mx))
    except InvalidName as exc:
        raise RecordError(str(exc)) from exc
    policy = StsPolicy(mode, max_age, patterns)
    reading = parse_policy(policy.text())
    if reading.policy != policy:
        raise RecordError("cannot build a valid policy: " + "; ".join(reading.errors))
    return policy
