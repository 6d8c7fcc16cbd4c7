"""Any bytes give a report or the parser's own error, never another exception."""

from __future__ import annotations

import gzip
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.errors import InvalidReport
from ingest.limits import Limits
from ingest.model import ParsedReport
from ingest.parse_mail import parse_input
from tests.conftest import SPEC

SMALL = Limits(max_compressed=64 * 1024, max_decompressed=256 * 1024)
EXAMPLE = (SPEC / "mail-auth__rfc8460-example__rpt01.json").read_bytes()
EXAMPLE_EMAIL = (SPEC / "mail-auth__rfc8460-example__rpt01.eml").read_bytes()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def _parse(data: bytes) -> None:
    try:
        result = parse_input(data, SMALL)
    except InvalidReport:
        return
    assert isinstance(result, ParsedReport)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_any_bytes(data: bytes) -> None:
    _parse(data)
    _parse(b"{" + data)
    _parse(gzip.compress(data))
    _parse(b"From: a@b\r\nContent-Type: application/tlsrpt+json\r\n\r\n" + data)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(
    ["organization-name", "date-range", "contact-info", "report-id", "policies", "x"]),
    json_values))  # fmt: skip
def test_any_json_shape(doc: dict[str, object]) -> None:
    _parse(json.dumps(doc).encode())


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(EXAMPLE) - 1), st.integers(0, 255))
def test_mutated_example(position: int, byte: int) -> None:
    mutated = bytearray(EXAMPLE)
    mutated[position] = byte
    _parse(bytes(mutated))
    _parse(gzip.compress(bytes(mutated)))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(EXAMPLE_EMAIL) - 1), st.binary(min_size=1, max_size=8))
def test_mutated_email(position: int, junk: bytes) -> None:
    _parse(EXAMPLE_EMAIL[:position] + junk + EXAMPLE_EMAIL[position:])
