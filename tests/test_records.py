"""The pure record grammar: TLS-RPT and MTA-STS TXT records, the policy file, mx patterns."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import run_cli
from tlsrpt.hostnames import InvalidName, mx_matches, normalise_hostname, normalise_mx_pattern
from tlsrpt.records import (
    STS_VERSION,
    TLSRPT_VERSION,
    RecordError,
    build_tlsrpt,
    encode_rua_uri,
    join_strings,
    new_sts_id,
    parse_sts,
    parse_tlsrpt,
    rua_target,
    select_record,
)
from tlsrpt.sts_policy import MAX_AGE_LIMIT, Mode, StsPolicy, build_policy, parse_policy

# TLS-RPT record (RFC 8460 §3)


def test_spec_digest_vector_two_uris() -> None:
    record = parse_tlsrpt("v=TLSRPTv1;rua=mailto:a@example.com,https://r.example.com/x")
    assert record.rua == ("mailto:a@example.com", "https://r.example.com/x")


def test_split_record_is_one_uri_after_joining() -> None:
    text = join_strings([b"v=TLSRPTv1;rua=mailto:re", b"ports@example.com"])
    assert parse_tlsrpt(select_record([text], TLSRPT_VERSION)).rua == (
        "mailto:reports@example.com",
    )


def test_two_records_mean_no_tlsrpt() -> None:
    texts = ["v=TLSRPTv1;rua=mailto:a@example.com", "v=TLSRPTv1; rua=mailto:b@example.com"]
    with pytest.raises(RecordError, match="2 records begin with v=TLSRPTv1"):
        select_record(texts, TLSRPT_VERSION)


def test_other_txt_records_are_dropped() -> None:
    texts = ["spf-ish text", "v=TLSRPTv1; rua=mailto:a@example.com", "v=TLSRPTv10;rua=x"]
    assert select_record(texts, TLSRPT_VERSION) == "v=TLSRPTv1; rua=mailto:a@example.com"


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["v=tlsrptv1;rua=mailto:a@example.com"], "case-sensitive"),
        (["v=STSv1; id=1;"], "none of the 1 TXT records"),
        ([], "no TXT record"),
    ],
)
def test_selection_failures_explain_themselves(texts: list[str], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        select_record(texts, TLSRPT_VERSION)


@pytest.mark.parametrize(
    "text",
    [
        "v=TLSRPTv1;rua=mailto:a@example.com",
        "v=TLSRPTv1; rua=mailto:a@example.com;",
        "v=TLSRPTv1 ;\trua=mailto:a@example.com , https://r.example.com/x%2Cy",
        "v=TLSRPTv1; rua=https://r.example.com/x; ext.1=some-value",
    ],
)
def test_valid_tlsrpt_records(text: str) -> None:
    assert parse_tlsrpt(text).rua[0] in ("mailto:a@example.com", "https://r.example.com/x")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("v=tlsrptv1; rua=mailto:a@example.com", "case-sensitive"),
        ("v=TLSRPTv1", "no rua= field"),
        ("v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com", "2 rua= fields"),
        ("v=TLSRPTv1; RUA=mailto:a@example.com", "must be written 'rua'"),
        ("v=TLSRPTv1; rua=http://r.example.com/", "only mailto: and https:"),
        ("v=TLSRPTv1; rua=mailto:nobody", "mailto: needs one address"),
        ("v=TLSRPTv1; rua=mailto:a b@example.com", "characters a URI cannot hold"),
        ("v=TLSRPTv1; rua=mailto:a@example.com,", "empty rua URI"),
        ("v=TLSRPTv1;; rua=mailto:a@example.com", "empty field"),
        ("v=TLSRPTv1; rua=mailto:a@example.com; x=a b", "not name=value|forbidden"),
        ("v=TLSRPTv1; rua=https:///nohost", "needs a host"),
    ],
)
def test_invalid_tlsrpt_records(text: str, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        parse_tlsrpt(text)


def test_comma_bang_semicolon_are_percent_encoded() -> None:
    assert encode_rua_uri("https://r.example.com/a,b;c!d") == "https://r.example.com/a%2Cb%3Bc%21d"
    assert encode_rua_uri("reports@example.com") == "mailto:reports@example.com"
    record = build_tlsrpt(["mailto:x!y@example.com", "https://r.example.com/t;k"])
    assert record.text() == ("v=TLSRPTv1; rua=mailto:x%21y@example.com,https://r.example.com/t%3Bk")
    assert parse_tlsrpt(record.text()) == record


def test_rua_target_compares_addresses_and_urls() -> None:
    assert rua_target("MAILTO:TLS%2Brpt@Example.COM") == rua_target("mailto:tls+rpt@example.com")
    assert rua_target("https://R.example.com:443/x") == rua_target("https://r.example.com/x")
    assert rua_target("https://r.example.com/x") != rua_target("https://r.example.com/y")


# MTA-STS record (RFC 8461 §3.1)


def test_sts_record() -> None:
    assert parse_sts("v=STSv1; id=20160831085700Z;").id == "20160831085700Z"
    assert parse_sts("v=STSv1;id=abc; ext=1").extensions == (("ext", "1"),)
    assert new_sts_id(datetime(2026, 12, 3, 13, 5, 9, tzinfo=UTC)) == "20261203130509Z"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("v=STSv1;", "no id= field"),
        ("v=STSv1; id=abc-1;", "1 to 32 letters and digits"),
        ("v=STSv1; id=" + "a" * 33, "1 to 32 letters and digits"),
        ("v=stsv1; id=1", "case-sensitive"),
    ],
)
def test_invalid_sts_records(text: str, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        parse_sts(text)


def test_two_sts_records_mean_none() -> None:
    with pytest.raises(RecordError, match="2 records begin with v=STSv1"):
        select_record(["v=STSv1; id=1;", "v=STSv1; id=2;"], STS_VERSION)


# Policy file (RFC 8461 §3.2)


def test_policy_first_of_repeated_keys_wins() -> None:
    reading = parse_policy(
        "version: STSv1\nmode: enforce\nmode: testing\nmx: a.example\nmax_age: 86400\n"
    )
    assert reading.policy == StsPolicy(Mode.ENFORCE, 86400, ("a.example",))
    assert reading.notes == ("line 3 repeats mode; line 2 applies",)


def test_policy_crlf_unknown_keys_and_several_mx() -> None:
    text = "version: STSv1\r\nmode: testing\r\nmx: mx1.example.com\r\nmx: *.example.net\r\n"
    text += "foo: bar\r\nmax_age:604800"
    reading = parse_policy(text)
    assert reading.policy == StsPolicy(Mode.TESTING, 604800, ("mx1.example.com", "*.example.net"))
    assert reading.notes == ("line 5: unknown key 'foo' is ignored",)


def test_mode_none_needs_no_mx() -> None:
    assert parse_policy("version: STSv1\nmode: none\nmax_age: 0\n").policy == StsPolicy(
        Mode.NONE, 0, ()
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: STSv1\nmode: testing\nmx: a.example\nmax_age: 31557601\n", "above the limit"),
        ("version: STSv1\nmode: testing\nmx: a.example\nmax_age: 1e5\n", "not a number"),
        ("version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n", "case-sensitive"),
        ("version: STSv2\nmode: testing\nmx: a.example\nmax_age: 1\n", "must be STSv1"),
        ("mode: testing\nmx: a.example\nmax_age: 1\n", "no 'version: STSv1' line"),
        ("version: STSv1\nmode: enforce\nmax_age: 1\n", "needs at least one 'mx:'"),
        ("version: STSv1\nmode: testing\nmx: a.*.example\nmax_age: 1\n", "leftmost label"),
        ("version: STSv1\nmode: testing\nmx: a.example\nmax_age 1\n", "not 'key: value'"),
        ("version: STSv1\nMode: testing\nmx: a.example\nmax_age: 1\n", "must be lowercase"),
        ("<html>oops</html>", "not 'key: value'"),
    ],
)
def test_invalid_policies(text: str, message: str) -> None:
    reading = parse_policy(text)
    assert reading.policy is None
    assert any(message in error for error in reading.errors), reading.errors


def test_build_policy_refuses_bad_input() -> None:
    with pytest.raises(RecordError, match="outside"):
        build_policy(Mode.TESTING, ["a.example"], MAX_AGE_LIMIT + 1)
    with pytest.raises(RecordError, match="needs at least one --mx"):
        build_policy(Mode.ENFORCE, [], 86400)
    assert build_policy(Mode.TESTING, ["MX.Example.com.", "mx.example.com"], 1).mx == (
        "mx.example.com",
    )


# mx patterns (RFC 8461 §4.1)


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("*.example.com", "mx.example.com", True),
        ("*.example.com", "MX.Example.COM.", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("*.example.com", "mxexample.com", False),
        ("mx.example.com", "mx.example.com", True),
        ("mx.example.com", "a.mx.example.com", False),
    ],
)
def test_mx_matching(pattern: str, host: str, matches: bool) -> None:
    assert mx_matches(pattern, host) is matches


@pytest.mark.parametrize("bad", ["*", "*.com", "mx*.example.com", "*.*.example.com", "-a.example"])
def test_bad_mx_patterns(bad: str) -> None:
    with pytest.raises(InvalidName):
        normalise_mx_pattern(bad)


def test_hostnames_in_a_labels_only() -> None:
    assert normalise_hostname("Example.COM.") == "example.com"
    with pytest.raises(InvalidName, match="A-labels"):
        normalise_hostname("bücher.example")


# Properties: never anything but a record or a clear error

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=80)


@given(st.one_of(_text, st.builds(lambda t: "v=TLSRPTv1;" + t, _text)))
def test_any_text_is_a_tlsrpt_record_or_a_record_error(text: str) -> None:
    try:
        record = parse_tlsrpt(text)
    except RecordError:
        return
    assert parse_tlsrpt(record.text()) == record


@given(st.one_of(_text, st.builds(lambda t: "version: STSv1\nmode: testing\n" + t, _text)))
def test_any_text_is_a_policy_reading(text: str) -> None:
    reading = parse_policy(text)
    assert (reading.policy is None) == bool(reading.errors)
    if reading.policy is not None:
        assert parse_policy(reading.policy.text()).policy == reading.policy


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)


@given(st.lists(_label, min_size=1, max_size=4), st.lists(_label, min_size=2, max_size=3))
def test_wildcard_matches_exactly_one_label(prefix: list[str], suffix: list[str]) -> None:
    host = ".".join(prefix + suffix)
    assert mx_matches("*." + ".".join(suffix), host) is (len(prefix) == 1)


# tlsrpt dns


def test_dns_prints_records_and_policy() -> None:
    result = run_cli(
        "dns",
        "Example.com",
        "--rua",
        "tlsrpt@example.com",
        "--rua",
        "https://r.example.net/t;1",
        "--mx",
        "mx1.example.com",
        "--mx",
        "*.mail.example.com",
        "--id",
        "abc123",
    )
    assert result.output.splitlines()[:3] == [
        "TXT record (where senders send their reports)",
        "  name:  _smtp._tls.example.com",
        "  value: v=TLSRPTv1; rua=mailto:tlsrpt@example.com,https://r.example.net/t%3B1",
    ]
    assert "  value: v=STSv1; id=abc123;" in result.output
    assert "https://mta-sts.example.com/.well-known/mta-sts.txt" in result.output
    policy = "version: STSv1\nmode: testing\nmx: mx1.example.com\nmx: *.mail.example.com\n"
    assert result.output.endswith(policy + "max_age: 86400\n")


def test_dns_zone_lines() -> None:
    long_rua = ["https://reports.example.net/" + "x" * 120, "https://r2.example.net/" + "y" * 120]
    args = ["dns", "example.com", "--mx", "mx.example.com", "--id", "1", "--ttl", "86400", "--zone"]
    lines = run_cli(*args, *(a for uri in long_rua for a in ("--rua", uri))).output.splitlines()
    tlsrpt = next(
        line for line in lines if line.startswith("_smtp._tls.example.com. 86400 IN TXT ")
    )
    strings = tlsrpt.split(" IN TXT ")[1]
    assert strings.count('" "') == 1  # over 255 characters: two strings
    assert join_strings(
        [s.encode() for s in json.loads("[" + strings.replace('" "', '","') + "]")]
    ) == ("v=TLSRPTv1; rua=" + ",".join(long_rua))
    assert '_mta-sts.example.com. 86400 IN TXT "v=STSv1; id=1;"' in lines


def test_dns_json() -> None:
    result = run_cli(
        "dns",
        "example.com",
        "--rua",
        "mailto:t@example.com",
        "--mx",
        "mx.example.com",
        "--mode",
        "enforce",
        "--json",
    )
    out = json.loads(result.output)
    assert [r["name"] for r in out["records"]] == ["_smtp._tls.example.com", "_mta-sts.example.com"]
    assert out["records"][0]["value"] == "v=TLSRPTv1; rua=mailto:t@example.com"
    assert out["mode"] == "enforce" and out["max_age"] == 604800
    assert parse_policy(out["policy"]).policy == StsPolicy(
        Mode.ENFORCE, 604800, ("mx.example.com",)
    )
    assert parse_sts(out["records"][1]["value"]).id.endswith("Z")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rua", "http://r.example.com/"], "only mailto: and https: are allowed"),
        (["--rua", "t@example.com", "--mx", "mx.example.com", "--max-age", "31557601"], "outside"),
        (["--rua", "t@example.com", "--mx", "mx.*.example.com"], "whole leftmost label"),
        (["--rua", "t@example.com"], "needs at least one --mx"),
        (["--rua", "t@example.com", "--mx", "mx.example.com", "--id", "no-dashes"], "letters and"),
        (["--rua", "t@example.com", "--mx", "mx.example.com", "--mode", "Enforce"], "Enforce"),
    ],
)
def test_dns_refuses_bad_input(args: list[str], message: str) -> None:
    result = run_cli("dns", "example.com", *args, expect=None)
    assert result.exit_code in (1, 2)
    assert message in result.output
    assert "Traceback" not in result.output
