"""Reports flattened into Arrow tables: the form in which they reach the store.

Pure (no database): import workers build `RowBatch`es in parallel and hand them to the
one writer, `ingest.store.Store`.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ingest.model import Envelope, result_category


class _WithoutPandas(importlib.abc.MetaPathFinder):
    """Makes `import pandas` fail while it is on `sys.meta_path`."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname == "pandas":
            raise ModuleNotFoundError("pandas is not needed here", name=fullname)


def skip_pandas_probe() -> None:
    """Spare this process the import of pandas (about 0.3 s) that pyarrow does on its
    first conversion of Python objects, only to check whether they are pandas objects;
    rows never are. Does nothing if pandas is already imported. pyarrow still imports
    pandas later if asked for a DataFrame."""
    if "pandas" in sys.modules:
        return
    blocker = _WithoutPandas()
    sys.meta_path.insert(0, blocker)
    try:
        pa.array([0], pa.int64())
    finally:
        sys.meta_path.remove(blocker)


def report_key(submitter: str, report_id: str) -> int:
    """A stable 63-bit key for (submitter, report_id)."""
    digest = hashlib.blake2b(f"{submitter}\x00{report_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def json_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(slots=True)
class _Columns:
    """Rows for one table, turned column-wise into an Arrow table for a bulk insert."""

    names: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    @classmethod
    def of(cls, *names: str) -> _Columns:
        return cls(names, [])

    def table(self, schema: pa.Schema) -> pa.Table:
        columns = zip(*self.rows, strict=True) if self.rows else ([] for _ in self.names)
        arrays = [pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)]
        return pa.Table.from_arrays(arrays, schema=schema)


_STR = pa.string()
_STRS = pa.list_(pa.string())
_TS = pa.timestamp("us", tz="UTC")
REPORTS_SCHEMA = pa.schema(
    [
        ("report_key", pa.int64()),
        ("submitter", _STR),
        ("report_id", _STR),
        ("organization_name", _STR),
        ("contact_info", _STR),
        ("start_datetime", _TS),
        ("end_datetime", _TS),
        ("report_date", pa.date32()),
        ("channel", _STR),
        ("received_at", _TS),
        ("source", _STR),
        ("tls_report_domain", _STR),
        ("tls_report_submitter", _STR),
        ("dkim_result", _STR),
        ("dkim_domain", _STR),
        ("json_sha256", _STR),
        ("anomalies", _STRS),
    ]
)
POLICIES_SCHEMA = pa.schema(
    [
        ("report_key", pa.int64()),
        ("policy_index", pa.int32()),
        ("policy_type", _STR),
        ("policy_domain", _STR),
        ("policy_string", _STRS),
        ("mx_host", _STRS),
        ("policy_mode", _STR),
        ("policy_id", _STR),
        ("total_successful_session_count", pa.int64()),
        ("total_failure_session_count", pa.int64()),
        ("anomalies", _STRS),
    ]
)
DETAILS_SCHEMA = pa.schema(
    [
        ("report_key", pa.int64()),
        ("policy_index", pa.int32()),
        ("detail_index", pa.int32()),
        ("result_type", _STR),
        ("result_category", _STR),
        ("sending_mta_ip", _STR),
        ("receiving_mx_hostname", _STR),
        ("receiving_mx_helo", _STR),
        ("receiving_ip", _STR),
        ("failed_session_count", pa.int64()),
        ("additional_information", _STR),
        ("failure_reason_code", _STR),
    ]
)
RAW_SCHEMA = pa.schema([("report_key", pa.int64()), ("raw", pa.binary())])


ROW_COLUMN = "_row"
"""Children's column naming the report (by position in its batch) they belong to; it
lets a batch drop a duplicate report's rows even when two copies share a key."""
_ROW_FIELD = pa.field(ROW_COLUMN, pa.int32())


@dataclass(frozen=True, slots=True)
class RowBatch:
    """Reports flattened into Arrow tables, ready for one bulk insert.

    Built by `flatten` anywhere (import workers build them in parallel); only
    `Store.add_rows` writes them."""

    reports: pa.Table
    policies: pa.Table
    details: pa.Table
    raw: pa.Table

    def __len__(self) -> int:
        return int(self.reports.num_rows)

    @staticmethod
    def concat(batches: Sequence[RowBatch]) -> RowBatch:
        offset = 0
        parts: list[RowBatch] = []
        for b in batches:
            parts.append(
                RowBatch(
                    b.reports,
                    _shift(b.policies, offset),
                    _shift(b.details, offset),
                    _shift(b.raw, offset),
                )
            )
            offset += len(b)
        return RowBatch(
            pa.concat_tables([p.reports for p in parts]),
            pa.concat_tables([p.policies for p in parts]),
            pa.concat_tables([p.details for p in parts]),
            pa.concat_tables([p.raw for p in parts]),
        )


def _shift(table: pa.Table, offset: int) -> pa.Table:
    if not offset:
        return table
    index = table.schema.get_field_index(ROW_COLUMN)
    shifted = pa.array([row + offset for row in table.column(index).to_pylist()], pa.int32())
    return table.set_column(index, _ROW_FIELD, shifted)


def flatten(envelopes: Sequence[Envelope]) -> RowBatch:
    """The rows of each report, in input order (duplicates are kept: the store decides)."""
    reports = _Columns.of(*REPORTS_SCHEMA.names)
    policies = _Columns.of(ROW_COLUMN, *POLICIES_SCHEMA.names)
    details = _Columns.of(ROW_COLUMN, *DETAILS_SCHEMA.names)
    raws = _Columns.of(ROW_COLUMN, *RAW_SCHEMA.names)
    for row, env in enumerate(envelopes):
        report = env.parsed.report
        key = report_key(report.submitter, report.report_id)
        _flatten(env, row, key, json_sha256(env.parsed.json_bytes), reports, policies, details)
        raws.rows.append((row, key, env.raw))
    return RowBatch(
        reports.table(REPORTS_SCHEMA),
        policies.table(_with_row(POLICIES_SCHEMA)),
        details.table(_with_row(DETAILS_SCHEMA)),
        raws.table(_with_row(RAW_SCHEMA)),
    )


def _with_row(schema: pa.Schema) -> pa.Schema:
    return schema.insert(0, _ROW_FIELD)


def _flatten(
    env: Envelope,
    row: int,
    key: int,
    digest: str,
    reports: _Columns,
    policies: _Columns,
    details: _Columns,
) -> None:
    # Hot path of a bulk import: rows are plain tuples; tuples stand for lists and enum
    # members (StrEnum) for their strings, both as Arrow converts them.
    parsed = env.parsed
    report = parsed.report
    mail = parsed.mail
    dkim = env.dkim
    reports.rows.append(
        (
            key,
            report.submitter,
            report.report_id,
            report.organization_name,
            report.contact_info,
            report.start_datetime,
            report.end_datetime,
            report.report_date,
            env.channel,
            env.received_at,
            env.source,
            mail.tls_report_domain if mail else None,
            mail.tls_report_submitter if mail else None,
            dkim.result if dkim else None,
            dkim.domain if dkim else None,
            digest,
            parsed.anomalies + report.anomalies,
        )
    )
    add_policy = policies.rows.append
    for p_index, p in enumerate(report.policies):
        add_policy(
            (
                row,
                key,
                p_index,
                p.policy_type,
                p.policy_domain,
                p.policy_string,
                p.mx_host,
                p.policy_mode,
                p.policy_id,
                p.total_successful_session_count,
                p.total_failure_session_count,
                p.anomalies,
            )
        )
        for d_index, d in enumerate(p.failure_details):
            details.rows.append(
                (
                    row,
                    key,
                    p_index,
                    d_index,
                    d.result_type,
                    result_category(d.result_type),
                    d.sending_mta_ip,
                    d.receiving_mx_hostname,
                    d.receiving_mx_helo,
                    d.receiving_ip,
                    d.failed_session_count,
                    d.additional_information,
                    d.failure_reason_code,
                )
            )
