"""RFC 8460 report JSON -> `Report`. Pure: bytes in, model out, no I/O.

Tolerant of what real senders send (spec digest §1 and the real corpus): both key
spellings, string-or-list, missing optional fields, datetimes without a zone. Strict
where it matters: I-JSON, counts, the identifying fields. Every tolerance that changes
or infers a value is recorded as an anomaly.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
from datetime import UTC, datetime
from typing import Any

from ingest.errors import InvalidReport
from ingest.limits import DEFAULT_LIMITS, Limits
from ingest.model import (
    FailureDetail,
    Policy,
    PolicyMode,
    PolicyType,
    Report,
    ResultType,
)

_MAX_COUNT = 2**53  # I-JSON: integers beyond this are not exact in a double
_MISSING = object()
_POLICY_TYPES = frozenset(p.value for p in PolicyType)
_RESULT_TYPES = frozenset(r.value for r in ResultType)
_MODES = {m.value: m for m in PolicyMode}


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidReport(f"duplicate member name {key[:64]!r} (I-JSON forbids it)")
            seen.add(key)
    return obj


def _reject_constant(name: str) -> Any:
    raise InvalidReport(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)


def load_json(data: bytes) -> Any:
    """Decode I-JSON: strict UTF-8, no duplicate names, no NaN/Infinity."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise InvalidReport("JSON starts with a byte order mark (I-JSON forbids it)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidReport(f"invalid UTF-8 at byte {exc.start}") from exc
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InvalidReport(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise InvalidReport("JSON nested too deeply") from exc


class _Reader:
    """Field access with paths for error messages, caps, and an anomaly list."""

    __slots__ = ("anomalies", "base", "limits")

    def __init__(self, limits: Limits, base: str = "") -> None:
        self.limits = limits
        self.base = f"{base}." if base else ""
        self.anomalies: list[str] = []

    def note(self, where: str, what: str) -> None:
        """Record an anomaly; paths are relative to the reader's base (its policy)."""
        self.anomalies.append(f"{where.removeprefix(self.base)}:{what}")

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise InvalidReport(f"expected an object, got {_kind(value)}", path)
        return value

    def text(self, value: Any, path: str, key: str | None = None) -> str:
        """A string within the length cap. Paths are built only for errors: this is the
        hot path of a bulk import."""
        if not isinstance(value, str):
            raise InvalidReport(f"expected a string, got {_kind(value)}", _join(path, key))
        if len(value) > self.limits.max_string:
            raise InvalidReport(
                f"string longer than {self.limits.max_string} characters", _join(path, key)
            )
        return value

    def required_text(self, parent: dict[str, Any], key: str, path: str) -> str:
        value = parent.get(key)
        if value is None:
            raise InvalidReport("missing", _join(path, key))
        value = self.text(value, path, key).strip()
        if not value:
            raise InvalidReport("empty", _join(path, key))
        return value

    def optional_text(self, parent: dict[str, Any], key: str, path: str) -> str | None:
        """A string that may be missing, null or empty (all three become None)."""
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.note(_join(path, key), "not_a_string")
            return None
        value = self.text(value, path, key)
        return value if value.strip() else None

    def count(self, parent: dict[str, Any], key: str, path: str, *, required: bool) -> int:
        value = parent.get(key, _MISSING)
        if type(value) is int and 0 <= value <= _MAX_COUNT:
            return value
        where = _join(path, key)
        if value is _MISSING:
            if required:
                raise InvalidReport("missing", where)
            self.note(where, "missing")
            return 0
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidReport(f"expected a non-negative integer, got {_kind(value)}", where)
        if value < 0:
            raise InvalidReport(f"negative count {value}", where)
        raise InvalidReport(f"count {value} is too large", where)

    def strings(self, value: Any, path: str) -> tuple[str, ...]:
        """A list of strings, or a lone string (the RFC example sends mx-host so)."""
        if value is None:
            return ()
        if isinstance(value, str):
            self.note(path, "not_a_list")
            return (self.text(value, path),)
        if not isinstance(value, list):
            raise InvalidReport(f"expected a list of strings, got {_kind(value)}", path)
        if len(value) > self.limits.max_policy_lines:
            raise InvalidReport(f"more than {self.limits.max_policy_lines} entries", path)
        cap = self.limits.max_string
        if all(type(v) is str and len(v) <= cap for v in value):
            return tuple(value)
        for i, v in enumerate(value):
            self.text(v, f"{path}[{i}]")
        raise AssertionError("unreachable: an element failed the check above")

    def timestamp(self, parent: dict[str, Any], key: str, path: str) -> datetime:
        raw = self.required_text(parent, key, path)
        try:
            value = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise InvalidReport(
                f"not an RFC 3339 date-time: {raw[:64]!r}", _join(path, key)
            ) from exc
        if value.tzinfo is None:
            self.note(_join(path, key), "no_time_zone")
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def ip(self, parent: dict[str, Any], key: str, path: str) -> str | None:
        raw = self.optional_text(parent, key, path)
        if raw is None:
            return None
        ip = _canonical_ip(raw)
        if ip is None:
            self.note(_join(path, key), "invalid_ip")
        return ip

    def hostname(self, parent: dict[str, Any], key: str, path: str) -> str | None:
        raw = self.optional_text(parent, key, path)
        return normalise_host(raw) if raw is not None else None


def normalise_host(name: str) -> str:
    """Lower case, no surrounding space, no trailing dot."""
    return name.strip().lower().rstrip(".")


def _join(path: str, key: str | None) -> str:
    if key is None:
        return path
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def parse_report(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Report:
    """Parse report JSON bytes (already inflated) into a `Report`.

    Raises `InvalidReport` naming the problem and the field.
    """
    if len(data) > limits.max_decompressed:
        raise InvalidReport(f"report JSON larger than {limits.max_decompressed} bytes")
    return report_from_object(load_json(data), limits)


def report_from_object(doc: Any, limits: Limits = DEFAULT_LIMITS) -> Report:
    r = _Reader(limits)
    top = r.obj(doc, "report")
    organization_name = r.required_text(top, "organization-name", "")
    report_id = r.required_text(top, "report-id", "")
    contact_info = r.optional_text(top, "contact-info", "")
    if "date-range" not in top:
        raise InvalidReport("missing", "date-range")
    date_range = r.obj(top["date-range"], "date-range")
    start = r.timestamp(date_range, "start-datetime", "date-range")
    end = r.timestamp(date_range, "end-datetime", "date-range")
    if end < start:
        r.anomalies.append("date-range:end_before_start")

    if "policies" not in top:
        raise InvalidReport("missing", "policies")
    raw_policies = top["policies"]
    if not isinstance(raw_policies, list):
        raise InvalidReport(f"must be a list, got {_kind(raw_policies)}", "policies")
    if not raw_policies:
        r.anomalies.append("policies:empty")
    if len(raw_policies) > limits.max_policies:
        raise InvalidReport(f"more than {limits.max_policies} policies", "policies")
    report_anomalies = r.anomalies
    policies = tuple(
        _policy(_Reader(limits, f"policies[{i}]"), p, f"policies[{i}]")
        for i, p in enumerate(raw_policies)
    )
    return Report(
        organization_name=organization_name,
        contact_info=contact_info,
        report_id=report_id,
        start_datetime=start,
        end_datetime=end,
        policies=policies,
        anomalies=tuple(report_anomalies),
    )


def _policy(r: _Reader, value: Any, path: str) -> Policy:
    entry = r.obj(value, path)
    if "policy" not in entry:
        raise InvalidReport("missing", f"{path}.policy")
    pol = r.obj(entry["policy"], f"{path}.policy")
    ppath = f"{path}.policy"
    policy_type = r.required_text(pol, "policy-type", ppath)
    if policy_type not in _POLICY_TYPES:
        r.anomalies.append(f"unknown_policy_type:{policy_type[:64]}")
    domain = r.hostname(pol, "policy-domain", ppath)
    if domain is None:
        r.anomalies.append("policy_domain_missing")
    policy_string = _policy_string(r, pol.get("policy-string"), f"{ppath}.policy-string")
    mx_key = "mx-host-pattern" if "mx-host-pattern" in pol and "mx-host" not in pol else "mx-host"
    mx_host = tuple(map(str.strip, r.strings(pol.get(mx_key), f"{ppath}.{mx_key}")))
    if mx_key == "mx-host-pattern":
        r.anomalies.append("mx_host_pattern_key")

    if "summary" not in entry:
        raise InvalidReport("missing", f"{path}.summary")
    summary = r.obj(entry["summary"], f"{path}.summary")
    spath = f"{path}.summary"
    ok = r.count(summary, "total-successful-session-count", spath, required=False)
    failed = r.count(summary, "total-failure-session-count", spath, required=False)

    details = _failure_details(r, entry.get("failure-details"), f"{path}.failure-details")
    detail_sum = sum(d.failed_session_count for d in details)
    if detail_sum > failed:
        r.anomalies.append("details_exceed_total")
    elif details and detail_sum < failed:
        r.anomalies.append("details_below_total")
    elif failed and not details:
        r.anomalies.append("failure_details_missing")

    mode, mode_anomaly, policy_id = _policy_facts(policy_type, policy_string)
    if mode_anomaly:
        r.anomalies.append(mode_anomaly)
    return Policy(
        policy_type=policy_type,
        policy_domain=domain,
        policy_string=policy_string,
        mx_host=mx_host,
        total_successful_session_count=ok,
        total_failure_session_count=failed,
        failure_details=details,
        policy_mode=mode,
        policy_id=policy_id,
        anomalies=tuple(r.anomalies),
    )


def _policy_string(r: _Reader, value: Any, path: str) -> tuple[str, ...]:
    lines = r.strings(value, path)
    if len(lines) == 1 and lines[0].startswith("["):
        # Microsoft sends TLSA records as one string holding a JSON array.
        try:
            inner = json.loads(lines[0])
        except ValueError:
            inner = None
        if isinstance(inner, list) and all(isinstance(x, str) for x in inner):
            r.anomalies.append("policy_string_json_encoded")
            lines = r.strings(inner, path)
    elif len(lines) == 1 and ("\n" in lines[0] or ";" in lines[0]):
        r.anomalies.append("policy_string_joined")
        sep = "\n" if "\n" in lines[0] else ";"
        lines = tuple(part for part in lines[0].split(sep) if part.strip())
    stripped = tuple(map(str.strip, lines))
    if stripped != lines:
        r.anomalies.append("policy_string_whitespace")
    return stripped


@functools.lru_cache(maxsize=4096)
def _policy_facts(
    policy_type: str, policy_string: tuple[str, ...]
) -> tuple[PolicyMode | None, str | None, str | None]:
    """The mode, an anomaly about it if any, and the fingerprint of a policy. Cached: a
    sender applies the same few policies day after day."""
    mode, anomaly = _mode(policy_string) if policy_type == PolicyType.STS else (None, None)
    return mode, anomaly, policy_fingerprint(policy_type, policy_string)


def _mode(policy_string: tuple[str, ...]) -> tuple[PolicyMode | None, str | None]:
    """The first `mode:` line wins (RFC 8461 §3.2: the first of a repeated key applies)."""
    for line in policy_string:
        key, sep, value = line.partition(":")
        if sep and key.strip() == "mode":
            mode = _MODES.get(value.strip())
            return mode, None if mode else f"unknown_mode:{value.strip()[:32]}"
    return None, None


def policy_fingerprint(policy_type: str, policy_string: tuple[str, ...]) -> str | None:
    """A short stable id of the policy a sender applied (the MTA-STS TXT `id` is not
    in reports). Line order does not matter: senders reorder `mx:` lines."""
    if not policy_string:
        return None
    digest = hashlib.sha256("\n".join([policy_type, *sorted(policy_string)]).encode())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=65536)
def _canonical_ip(raw: str) -> str | None:
    """The canonical text of an IP address, None if it is not one. Cached: the same
    sending MTAs and MX addresses recur in report after report."""
    try:
        return ipaddress.ip_address(raw.strip()).compressed
    except ValueError:
        return None


def _failure_details(r: _Reader, value: Any, path: str) -> tuple[FailureDetail, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidReport(f"must be a list, got {_kind(value)}", path)
    if len(value) > r.limits.max_failure_details:
        raise InvalidReport(f"more than {r.limits.max_failure_details} entries", path)
    return tuple(_failure_detail(r, d, f"{path}[{i}]") for i, d in enumerate(value))


def _failure_detail(r: _Reader, value: Any, path: str) -> FailureDetail:
    fd = r.obj(value, path)
    result_type = r.required_text(fd, "result-type", path)
    if result_type not in _RESULT_TYPES:
        r.anomalies.append(f"unknown_result_type:{result_type[:64]}")
    info_key = "additional-information" if "additional-information" in fd else "additional-info-uri"
    return FailureDetail(
        result_type=result_type,
        failed_session_count=r.count(fd, "failed-session-count", path, required=True),
        sending_mta_ip=r.ip(fd, "sending-mta-ip", path),
        receiving_mx_hostname=r.hostname(fd, "receiving-mx-hostname", path),
        receiving_mx_helo=r.optional_text(fd, "receiving-mx-helo", path),
        receiving_ip=r.ip(fd, "receiving-ip", path),
        additional_information=r.optional_text(fd, info_key, path),
        failure_reason_code=r.optional_text(fd, "failure-reason-code", path),
    )
