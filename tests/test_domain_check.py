"""`tlsrpt check` and `tlsrpt enforce-plan` against real servers on loopback: a DNS server
answering from a test zone, an HTTPS server for mta-sts.DOMAIN with trustme certificates,
and aiosmtpd with STARTTLS as the MX."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from analysis.verdict import domain_verdict
from tests.conftest import run_cli
from tests.support.dns_zone import Zone, serve_zone
from tests.support.policy_site import Page, serve_policies
from tests.support.reports import Failure, Sender, build_store, days_back
from tests.support.smtp_mx import serve_mx, silent_port, silent_udp_port, sni_context

LOOPBACK = "127.0.0.1"
COLLECTOR = "tlsrpt@collector.example"
NOW = datetime.now(UTC)


def policy(mode: str, *mx: str, max_age: int = 86400) -> bytes:
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {m}" for m in mx), f"max_age: {max_age}"]
    return ("\r\n".join(lines) + "\r\n").encode()


@dataclass
class Site:
    """One test domain: its records, policy page and MX hosts with their certificates."""

    tlsrpt: list[list[bytes]]
    page: Page | None
    mx: list[tuple[int, str]]
    sts: str = "v=STSv1; id=20261101000000Z;"


def _sites() -> dict[str, Site]:
    ok_rua = [[f"v=TLSRPTv1; rua=mailto:{COLLECTOR}".encode()]]
    good = policy("testing", "mx1.good.example", "*.mx.good.example")
    return {
        "good.example": Site(
            ok_rua, Page(good), [(10, "mx1.good.example"), (20, "b.mx.good.example")]
        ),
        "tworecords.example": Site(
            [
                [b"v=TLSRPTv1; rua=mailto:a@tworecords.example"],
                [b"v=TLSRPTv1; rua=mailto:b@x.example"],
            ],
            Page(policy("testing", "mx1.good.example")),
            [(10, "mx1.good.example")],
        ),
        "split.example": Site(
            [
                [b"v=TLSRPTv1;rua=mailto:tlsrpt@coll", b"ector.example"],
                [b"google-site-verification=x"],
            ],
            Page(policy("testing", "mx1.good.example")),
            [(10, "mx1.good.example")],
        ),
        "wrongcase.example": Site(
            [[f"v=tlsrptv1; rua=mailto:{COLLECTOR}".encode()]],
            Page(policy("testing", "mx1.good.example")),
            [(10, "mx1.good.example")],
        ),
        "redirect.example": Site(
            ok_rua,
            Page(b"", status=301, headers={"Location": "https://www.redirect.example/sts.txt"}),
            [(10, "mx1.good.example")],
        ),
        "html.example": Site(
            ok_rua,
            Page(policy("testing", "mx1.good.example"), content_type="text/html"),
            [(10, "mx1.good.example")],
        ),
        "big.example": Site(ok_rua, Page(b"# padding\n" * 7000), [(10, "mx1.good.example")]),
        "maxage.example": Site(
            ok_rua,
            Page(policy("testing", "mx1.good.example", max_age=31557601)),
            [(10, "mx1.good.example")],
        ),
        "unmatched.example": Site(
            ok_rua, Page(policy("testing", "mx1.good.example")), [(10, "mx9.good.example")]
        ),
        "wildcard.example": Site(
            ok_rua,
            Page(policy("testing", "*.mx.good.example")),
            [(10, "b.mx.good.example"), (20, "a.b.mx.good.example")],
        ),
        "expired.example": Site(
            ok_rua, Page(policy("testing", "mx.expired.example")), [(10, "mx.expired.example")]
        ),
        "wronghost.example": Site(
            ok_rua, Page(policy("testing", "mx.wronghost.example")), [(10, "mx.wronghost.example")]
        ),
        "untrusted.example": Site(
            ok_rua, Page(policy("testing", "mx.untrusted.example")), [(10, "mx.untrusted.example")]
        ),
        "soon.example": Site(
            ok_rua, Page(policy("testing", "mx.soon.example")), [(10, "mx.soon.example")]
        ),
        "badcert.example": Site(
            ok_rua, Page(policy("testing", "mx1.good.example")), [(10, "mx1.good.example")]
        ),
        "both.example": Site(
            [[f"v=TLSRPTv1; rua=mailto:{COLLECTOR},https://collector.example/tls%3Brpt".encode()]],
            Page(policy("testing", "mx1.good.example")),
            [(10, "mx1.good.example")],
        ),
        "enforced.example": Site(
            ok_rua,
            Page(policy("enforce", "mx1.good.example", "*.mx.good.example", max_age=1209600)),
            [(10, "mx1.good.example")],
        ),
    }


@dataclass
class World:
    dns_port: int
    https_port: int
    smtp_port: int
    ca_file: Path

    def args(self, https_port: int | None = None, smtp_port: int | None = None) -> list[str]:
        return [
            "--nameserver",
            f"{LOOPBACK}:{self.dns_port}",
            "--ca-file",
            str(self.ca_file),
            "--https-port",
            str(https_port or self.https_port),
            "--timeout",
            "2",
        ]

    def check(
        self, domain: str, *extra: str, expect: int | None = None, **ports: int
    ) -> dict[str, Any]:
        args = [
            "check",
            domain,
            *self.args(**ports),
            "--smtp-port",
            str(ports.get("smtp_port", self.smtp_port)),
        ]
        result = run_cli(*args, "--mailbox", COLLECTOR, "--json", *extra, expect=expect)
        report: dict[str, Any] = json.loads(result.output)
        assert result.exit_code == (0 if report["ok"] else 1)
        return report


def _server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    sites = _sites()
    ca, rogue_ca = trustme.CA(), trustme.CA()
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    web_names = [f"mta-sts.{d}" for d in sites if d != "badcert.example"]
    web = _server_context(ca.issue_cert(*web_names))
    mx_contexts = {
        "mx.expired.example": _server_context(
            ca.issue_cert(
                "mx.expired.example",
                not_before=NOW - timedelta(days=90),
                not_after=NOW - timedelta(days=2),
            )
        ),
        "mx.wronghost.example": _server_context(ca.issue_cert("other.example.net")),
        "mx.untrusted.example": _server_context(rogue_ca.issue_cert("mx.untrusted.example")),
        "mx.soon.example": _server_context(
            ca.issue_cert("mx.soon.example", not_after=NOW + timedelta(days=5, hours=1))
        ),
    }
    default_mx = _server_context(
        ca.issue_cert("mx1.good.example", "*.mx.good.example", "mx9.good.example")
    )
    zone = Zone()
    for domain, site in sites.items():
        zone.txt[f"_smtp._tls.{domain}"] = site.tlsrpt
        zone.txt[f"_mta-sts.{domain}"] = [[site.sts.encode()]]
        zone.a[f"mta-sts.{domain}"] = [LOOPBACK]
        zone.mx[domain] = site.mx
        for _, host in site.mx:
            zone.a[host] = [LOOPBACK]
    pages = {f"mta-sts.{d}": s.page for d, s in sites.items() if s.page is not None}
    with (
        serve_zone(zone) as dns_port,
        serve_policies(pages, web) as https_port,
        serve_mx(sni_context(default_mx, mx_contexts)) as smtp_port,
    ):
        yield World(dns_port, https_port, smtp_port, ca_file)


def item(report: dict[str, Any], name: str) -> dict[str, Any]:
    found = [i for i in report["items"] if i["name"] == name]
    assert len(found) == 1, (name, [i["name"] for i in report["items"]])
    return found[0]


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {i["name"]: i["status"] for i in report["items"]}


# tlsrpt check


def test_valid_setup_passes_everything(world: World) -> None:
    report = world.check("good.example", expect=0)
    assert report["ok"] is True
    assert set(statuses(report).values()) == {"pass"}, report["items"]
    assert list(statuses(report)) == [
        "tls-rpt record",
        "tls-rpt rua",
        "mta-sts record",
        "policy fetch",
        "policy",
        "mx records",
        "mx mx1.good.example",
        "starttls mx1.good.example",
        "mx b.mx.good.example",
        "starttls b.mx.good.example",
    ]
    assert report["rua"] == [f"mailto:{COLLECTOR}"]
    assert report["sts_id"] == "20261101000000Z"
    assert "mode testing" in item(report, "policy")["detail"]
    assert (
        "matches policy pattern *.mx.good.example" in item(report, "mx b.mx.good.example")["detail"]
    )
    tls = item(report, "starttls mx1.good.example")["detail"]
    assert "TLSv1." in tls and "days)" in tls and "mx1.good.example" in tls


def test_readable_checklist(world: World) -> None:
    result = run_cli(
        "check", "wronghost.example", *world.args(), "--smtp-port", str(world.smtp_port), expect=1
    )
    lines = result.output.splitlines()
    assert lines[0] == "Checking wronghost.example"
    assert any(line.strip().startswith("PASS  tls-rpt record") for line in lines)
    fail = next(i for i, line in enumerate(lines) if "FAIL  starttls mx.wronghost.example" in line)
    assert "fix: serve a certificate whose names include mx.wronghost.example" in lines[fail + 1]
    assert lines[-1].startswith("1 failed, 1 warnings,")  # the warning: no --mailbox given


def test_rua_not_pointing_at_this_collector_fails(world: World) -> None:
    result = run_cli(
        "check",
        "good.example",
        *world.args(),
        "--smtp-port",
        str(world.smtp_port),
        "--mailbox",
        "other@collector.example",
        "--https-url",
        "https://c.example/tlsrpt",
        "--json",
        expect=1,
    )
    rua = item(json.loads(result.output), "tls-rpt rua")
    assert rua["status"] == "fail"
    assert "reports go to mailto:tlsrpt@collector.example" in rua["detail"]


def test_rua_matches_case_insensitively(world: World) -> None:
    report = world.check("good.example", "--mailbox", "TLSRPT@Collector.Example", expect=0)
    assert item(report, "tls-rpt rua")["status"] == "pass"


def test_two_tlsrpt_records_mean_none(world: World) -> None:
    report = world.check("tworecords.example", expect=1)
    record = item(report, "tls-rpt record")
    assert record["status"] == "fail"
    assert "2 records begin with v=TLSRPTv1" in record["detail"]
    assert report["rua"] == []
    assert item(report, "mta-sts record")["status"] == "pass"  # the rest is still checked


def test_record_split_across_strings_is_joined_without_spaces(world: World) -> None:
    report = world.check("split.example", expect=0)
    assert item(report, "tls-rpt record")["status"] == "pass"
    assert report["rua"] == [f"mailto:{COLLECTOR}"]
    assert item(report, "tls-rpt rua")["status"] == "pass"


def test_version_tag_is_case_sensitive(world: World) -> None:
    record = item(world.check("wrongcase.example", expect=1), "tls-rpt record")
    assert record["status"] == "fail"
    assert "case-sensitive" in record["detail"] and "v=tlsrptv1" in record["detail"]
    assert "tlsrpt dns wrongcase.example" in record["fix"]


def test_policy_served_through_a_redirect_fails(world: World) -> None:
    report = world.check("redirect.example", expect=1)
    fetch = item(report, "policy fetch")
    assert fetch["status"] == "fail"
    assert "HTTP 301 redirect to https://www.redirect.example/sts.txt" in fetch["detail"]
    assert "no redirect" in fetch["fix"]
    assert "mx mx1.good.example" not in statuses(report)  # no policy, no pattern check
    assert item(report, "starttls mx1.good.example")["status"] == "pass"


def test_policy_must_be_text_plain(world: World) -> None:
    fetch = item(world.check("html.example", expect=1), "policy fetch")
    assert "Content-Type is text/html, not text/plain" in fetch["detail"]


def test_policy_over_64_kb_is_refused(world: World) -> None:
    fetch = item(world.check("big.example", expect=1), "policy fetch")
    assert "70000 bytes, over the 65536 byte limit" in fetch["detail"]


def test_policy_certificate_must_name_the_policy_host(world: World) -> None:
    fetch = item(world.check("badcert.example", expect=1), "policy fetch")
    assert "certificate not valid for mta-sts.badcert.example" in fetch["detail"]
    assert "certificate valid for mta-sts.badcert.example" in fetch["fix"]


def test_max_age_too_large_is_invalid(world: World) -> None:
    report = world.check("maxage.example", expect=1)
    assert item(report, "policy fetch")["status"] == "pass"
    parsed = item(report, "policy")
    assert parsed["status"] == "fail"
    assert "max_age 31557601 is above the limit of 31557600" in parsed["detail"]


def test_mx_matched_by_no_pattern_fails(world: World) -> None:
    report = world.check("unmatched.example", expect=1)
    mx = item(report, "mx mx9.good.example")
    assert mx["status"] == "fail"
    assert "no policy mx pattern matches mx9.good.example" in mx["detail"]
    assert mx["fix"].startswith("add `mx: mx9.good.example` to the policy")
    assert item(report, "policy mx")["status"] == "warn"  # mx1.good.example serves no MX
    assert item(report, "starttls mx9.good.example")["status"] == "pass"


def test_wildcard_matches_exactly_one_label(world: World) -> None:
    report = world.check("wildcard.example", expect=1)
    assert item(report, "mx b.mx.good.example")["status"] == "pass"
    deeper = item(report, "mx a.b.mx.good.example")
    assert deeper["status"] == "fail"
    assert "no policy mx pattern matches" in deeper["detail"]


def test_expired_mx_certificate_fails(world: World) -> None:
    tls = item(world.check("expired.example", expect=1), "starttls mx.expired.example")
    assert tls["status"] == "fail"
    assert tls["detail"].startswith("certificate-expired: certificate has expired")
    expired_on = (NOW - timedelta(days=2)).strftime("%Y-%m-%d")
    assert f"expired {expired_on}" in tls["detail"]
    assert tls["fix"] == "renew the certificate of mx.expired.example"


def test_mx_certificate_for_the_wrong_host_fails(world: World) -> None:
    tls = item(world.check("wronghost.example", expect=1), "starttls mx.wronghost.example")
    assert tls["detail"].startswith("certificate-host-mismatch:")
    assert "names other.example.net" in tls["detail"]


def test_mx_certificate_from_an_unknown_ca_fails(world: World) -> None:
    tls = item(world.check("untrusted.example", expect=1), "starttls mx.untrusted.example")
    assert tls["detail"].startswith("certificate-not-trusted:")


def test_certificate_expiring_soon_warns(world: World) -> None:
    report = world.check("soon.example", expect=0)
    tls = item(report, "starttls mx.soon.example")
    assert tls["status"] == "warn"
    assert "(5 days)" in tls["detail"]


@pytest.mark.timeout(30)
def test_hosts_that_do_not_answer_time_out(world: World) -> None:
    with silent_port() as port:
        args = ["check", "good.example", "--nameserver", f"{LOOPBACK}:{world.dns_port}"]
        args += [
            "--ca-file",
            str(world.ca_file),
            "--https-port",
            str(port),
            "--smtp-port",
            str(port),
        ]
        result = run_cli(*args, "--timeout", "1", "--json", expect=1)
    report = json.loads(result.output)
    fetch = item(report, "policy fetch")
    assert fetch["status"] == "fail"
    assert "no complete answer within 1 s" in fetch["detail"]
    for host in ("mx1.good.example", "b.mx.good.example"):
        tls = item(report, f"starttls {host}")
        assert tls["detail"] == "no-connection: no answer within 1 s"
        assert "port 25 is not blocked" in tls["fix"]
    assert item(report, "tls-rpt record")["status"] == "pass"


@pytest.mark.timeout(30)
def test_dns_server_that_does_not_answer_times_out(world: World) -> None:
    with silent_udp_port() as udp_port:
        result = run_cli(
            "check",
            "good.example",
            "--nameserver",
            f"{LOOPBACK}:{udp_port}",
            "--timeout",
            "0.5",
            "--json",
            expect=1,
        )
    report = json.loads(result.output)
    assert statuses(report) == {
        "tls-rpt record": "fail",
        "mta-sts record": "fail",
        "policy fetch": "fail",
        "mx records": "fail",
    }
    assert "no answer within 0.5 s" in item(report, "tls-rpt record")["detail"]


def test_mx_without_starttls_fails(world: World) -> None:
    with serve_mx(None) as plain_port:
        report = world.check("good.example", expect=1, smtp_port=plain_port)
    tls = item(report, "starttls mx1.good.example")
    assert tls["detail"] == "starttls-not-supported: EHLO lists no STARTTLS"
    assert tls["fix"] == "enable STARTTLS on mx1.good.example"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--nameserver", "127.0.0.1:notaport", "is not HOST or HOST:PORT"),
        ("--https-url", "ftp://collector.example/", "only mailto: and https:"),
        ("--https-url", "collector@example.com", "is not a https: URI"),
        ("--mailbox", "https://collector.example/", "is not a mailto: URI"),
    ],
)
def test_bad_options_are_usage_errors(option: str, value: str, message: str) -> None:
    result = run_cli("check", "good.example", option, value, expect=2)
    assert message in result.output


def test_mailto_and_https_rua_both_reach_the_collector(world: World) -> None:
    url = "https://Collector.example:443/tls;rpt"  # the record holds it percent-encoded
    report = world.check("both.example", "--https-url", url, expect=0)
    rua = item(report, "tls-rpt rua")
    assert rua["status"] == "pass"
    assert "https://collector.example/tls%3Brpt" in rua["detail"]
    assert "expect each report twice, stored once" in rua["detail"]


# tlsrpt enforce-plan
#
# The verdict comes from a real store; `data_dir` (no database) gives the "No verdict" line.

VERDICT_END = "2026-11-29"
EXPIRED_MX1 = Failure("certificate-expired", 12, mx="mx1.good.example")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """28 days of reports for good.example: every sender fails on mx1.good.example."""
    data_dir = tmp_path_factory.mktemp("store") / "data"
    senders = [
        Sender("Big Mail Example", "bigmail.example", 900, (EXPIRED_MX1,)),
        Sender("Office Cloud Example", "officecloud.example", 400, (EXPIRED_MX1,)),
    ]
    last = date.fromisoformat(VERDICT_END)
    assert build_store(data_dir, senders, days_back(last, 28), "good.example") == 56
    return data_dir


def test_enforce_plan_shows_the_verdict_first(world: World, store: Path) -> None:
    args = ["enforce-plan", "good.example", *world.args(), "--data-dir", store]
    text = run_cli(*args, "--end", VERDICT_END).output
    lines = text.splitlines()
    assert lines[0] == ("good.example: NOT ready to enforce [not_ready], 2026-11-02 to 2026-11-29")
    reasons = lines.index("Reasons:")
    assert lines[reasons + 1].startswith(
        "  x [mx_configuration] MX mx1.good.example fails for 2 of 2 senders"
    )
    assert "certificate-expired (672)" in text
    warning = lines.index(
        "The reports do not support enforce yet: fix the above before publishing this."
    )
    plan = lines.index("Switching good.example to MTA-STS mode: enforce")
    assert reasons < warning < plan
    assert "New policy file (https://mta-sts.good.example/.well-known/mta-sts.txt):" in text

    shown = json.loads(run_cli(*args, "--end", VERDICT_END, "--json").output)
    expected = domain_verdict(store, "good.example", end=date.fromisoformat(VERDICT_END))
    assert shown["verdict"] == json.loads(json.dumps(expected.as_dict(), default=str))
    assert shown["verdict"]["decision"] == "not_ready"
    assert shown["verdict"]["reasons"][0]["evidence"]["mx"] == "mx1.good.example"
    assert shown["verdict_missing"] is None
    assert "mode: enforce" in shown["policy"]


def test_enforce_plan_verdict_window_options(world: World, store: Path) -> None:
    args = ["enforce-plan", "good.example", *world.args(), "--data-dir", store, "--json"]
    week = json.loads(run_cli(*args, "--end", VERDICT_END, "--days", "7").output)["verdict"]
    assert week["evidence"]["first_day"] == "2026-11-23"
    assert week["evidence"]["days_with_reports"] == 7
    before = json.loads(run_cli(*args, "--end", "2026-10-01").output)["verdict"]
    assert before["decision"] == "insufficient_data"
    assert before["evidence"]["sts_sessions"] == 0
    result = run_cli(*args, "--end", "29.11.2026", expect=2)
    assert "29.11.2026" in result.output


def test_enforce_plan_for_a_domain_without_reports(world: World, store: Path) -> None:
    args = ["enforce-plan", "enforced.example", *world.args(), "--data-dir", store]
    text = run_cli(*args, "--end", VERDICT_END).output
    assert text.startswith("enforced.example: not enough data to judge [insufficient_data]")
    assert "[no_sts_reports] No sender reported applying an MTA-STS policy" in text
    assert "do not support enforce yet" in text
    plan = json.loads(run_cli(*args, "--end", VERDICT_END, "--json").output)
    assert plan["verdict"]["decision"] == "insufficient_data"
    assert plan["current_mode"] == "enforce"


def test_enforce_plan_from_the_live_policy(world: World, data_dir: Path) -> None:
    result = run_cli("enforce-plan", "good.example", *world.args(), "--data-dir", data_dir)
    text = result.output
    database = data_dir / "tlsrpt.duckdb"
    assert text.splitlines()[0] == (
        f"No verdict: no database at {database}: import or receive some reports first."
    )
    assert text.splitlines()[2] == "Switching good.example to MTA-STS mode: enforce"
    policy_at = text.index(
        "New policy file (https://mta-sts.good.example/.well-known/mta-sts.txt):"
    )
    new_policy = "version: STSv1\nmode: enforce\nmx: mx1.good.example\nmx: *.mx.good.example\n"
    assert new_policy + "max_age: 604800\n" in text[policy_at:]
    assert "mx patterns from the live policy at https://mta-sts.good.example" in text
    publish = text.index("1. Publish the new policy")
    txt = text.index("3. Only then change the TXT record _mta-sts.good.example")
    assert publish < txt
    assert "`mode: enforce`" in text and "Over the next 1 day" in text
    assert "Watch in the reports afterwards:" in text


def test_enforce_plan_json_with_explicit_mx(world: World, data_dir: Path) -> None:
    result = run_cli(
        "enforce-plan",
        "nowhere.example",
        *world.args(),
        "--mx",
        "mx.nowhere.example",
        "--max-age",
        "1209600",
        "--data-dir",
        data_dir,
        "--json",
    )
    plan = json.loads(result.output)
    assert plan["verdict"] is None
    assert plan["verdict_missing"].startswith("No verdict: no database at ")
    assert (
        plan["policy"]
        == "version: STSv1\nmode: enforce\nmx: mx.nowhere.example\nmax_age: 1209600\n"
    )
    assert plan["sts_record"]["name"] == "_mta-sts.nowhere.example"
    assert plan["sts_record"]["value"].startswith("v=STSv1; id=")
    assert plan["sts_record"]["value"] != "v=STSv1; id=20261101000000Z;"
    assert len(plan["steps"]) == 5 and plan["watch"]


def test_enforce_plan_keeps_a_longer_live_max_age(world: World, data_dir: Path) -> None:
    plan = json.loads(
        run_cli(
            "enforce-plan", "enforced.example", *world.args(), "--data-dir", data_dir, "--json"
        ).output
    )
    assert plan["current_mode"] == "enforce"
    assert "max_age: 1209600" in plan["policy"]


def test_enforce_plan_without_mx_or_live_policy_is_an_error(world: World, data_dir: Path) -> None:
    result = run_cli(
        "enforce-plan", "redirect.example", *world.args(), "--data-dir", data_dir, expect=1
    )
    assert "cannot read the live policy" in result.output and "--mx" in result.output


def test_enforce_plan_warns_about_mx_hosts_the_policy_misses(world: World, data_dir: Path) -> None:
    args = ["enforce-plan", "unmatched.example", *world.args(), "--data-dir", data_dir]
    text = run_cli(*args).output
    assert "Warning: the MX mx9.good.example matches no mx pattern below" in text
    plan = json.loads(run_cli(*args, "--json").output)
    assert plan["unmatched_mx"] == ["mx9.good.example"]
    fixed = json.loads(run_cli(*args, "--mx", "*.good.example", "--json").output)
    assert fixed["unmatched_mx"] == []
