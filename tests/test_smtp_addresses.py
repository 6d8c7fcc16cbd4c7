"""The collector parses MAIL and RCPT addresses exactly as aiosmtpd does (its own parser
is the reference), whatever the argument."""

from __future__ import annotations

import string

from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.smtp_receiver import ReportSMTP


class _NoHooks:
    pass


REFERENCE = SMTP(_NoHooks())
OURS = ReportSMTP(_NoHooks(), max_session=60)

ATEXT = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
atoms = st.text(ATEXT, min_size=1, max_size=8)
dot_atoms = st.lists(atoms, min_size=1, max_size=3).map(".".join)
rests = st.text(' \t()<>@.,;:"[]\\=xA1-', max_size=12)
# near the fast path: <local@domain>, then anything
near_simple = st.builds(
    lambda local, domain, rest: f"<{local}@{domain}>{rest}", dot_atoms, dot_atoms, rests
)
# anything made of the characters that matter to the grammar
anything = st.text(ATEXT[:20] + ' \t<>@.()"[]\\,;:é', max_size=30)


def outcome(server: SMTP, arg: str) -> object:
    try:
        return server._getaddr(arg)
    except Exception as exc:  # noqa: BLE001  (the standard library's parser fails on "<")
        return type(exc)


@settings(max_examples=400, deadline=None)
@given(st.one_of(near_simple, anything))
def test_the_same_address_and_rest_as_aiosmtpd(arg: str) -> None:
    assert outcome(OURS, arg) == outcome(REFERENCE, arg)


@settings(max_examples=100, deadline=None)
@given(near_simple)
def test_the_local_part_limit_applies_alike(arg: str) -> None:
    REFERENCE.local_part_limit = OURS.local_part_limit = 4
    try:
        assert outcome(OURS, arg) == outcome(REFERENCE, arg)
    finally:
        REFERENCE.local_part_limit = OURS.local_part_limit = 0


def test_common_forms() -> None:
    for arg in [
        "<tlsrpt@example.com>",
        "<tlsrpt@example.com> SIZE=2000 BODY=8BITMIME",
        "<a.b@c.example>(comment) X",
        "<>",
        "  <x@y>",
        "x@y",
        '<"quoted local"@x.example>',
        "<a@[192.0.2.1]>",
        "<bad@@x>",
    ]:
        assert outcome(OURS, arg) == outcome(REFERENCE, arg), arg
