"""The enforce verdict: table-driven over real stores built from generated reports, plus
the pure function on hand-made evidence."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import pytest

from analysis.evidence import Evidence, FailureGroup, SenderSessions, collect_evidence
from analysis.verdict import Decision, Thresholds, decide, domain_verdict
from analysis.window import Window
from tests.conftest import run_cli
from tests.support.reports import Failure, Sender, build_store, days_back

END = date(2026, 11, 29)
BIG = Sender("Big Mail Example", "bigmail.example", 900)
OFFICE = Sender("Office Cloud Example", "officecloud.example", 400)
SMALL = Sender("Regional Post Example", "regionalpost.example", 60)
CLEAN = (BIG, OFFICE, SMALL)


def failing(sender: Sender, *failures: Failure) -> Sender:
    return replace(sender, failures=failures)


EXPIRED_MX2 = Failure("certificate-expired", 5, mx="mx2.example.com")


@dataclass(frozen=True)
class Case:
    name: str
    senders: tuple[Sender, ...]
    decision: Decision
    blocking: frozenset[str]
    codes: frozenset[str] = frozenset()
    """Codes that must also be present (non-blocking)."""
    mentions: tuple[str, ...] = ()
    """Text that the reasons must mention."""
    days: int = 28
    enforced: bool = False


CASES = [
    Case("clean domain", CLEAN, Decision.READY, frozenset(), frozenset({"clean"})),
    Case(
        "one large sender with certificate-host-mismatch on one MX",
        (
            failing(BIG, Failure("certificate-host-mismatch", 30, mx="mx2.example.com")),
            OFFICE,
            SMALL,
        ),
        Decision.NOT_READY,
        frozenset({"sender_failures"}),
        mentions=("mx2.example.com", "Big Mail Example", "certificate-host-mismatch"),
    ),
    Case(
        "one MX failing for every sender",
        tuple(failing(s, EXPIRED_MX2) for s in CLEAN),
        Decision.NOT_READY,
        frozenset({"mx_configuration"}),
        mentions=("MX mx2.example.com fails for 3 of 3 senders",),
    ),
    Case(
        "policy fetch errors",
        (
            BIG,
            OFFICE,
            failing(
                SMALL,
                Failure(
                    "sts-policy-fetch-error",
                    3,
                    mx=None,
                    sending_ip=None,
                    reason_code="bad https response code: 404",
                ),
            ),
        ),
        Decision.NOT_READY,
        frozenset({"policy_errors"}),
        mentions=("Regional Post Example", "sts-policy-fetch-error"),
    ),
    Case(
        "sts-webpki-invalid counts as a policy error",
        (failing(BIG, Failure("sts-webpki-invalid", 1, mx=None)), OFFICE, SMALL),
        Decision.NOT_READY,
        frozenset({"policy_errors"}),
    ),
    Case(
        "two days of data",
        CLEAN,
        Decision.INSUFFICIENT_DATA,
        frozenset(),
        frozenset({"too_few_days"}),
        days=2,
    ),
    Case(
        "failures under tlsa policies do not count",
        (
            replace(
                BIG,
                tlsa_failures=(
                    Failure("tlsa-invalid", 40, mx="mx1.example.com"),
                    Failure("dane-required", 10, mx="mx2.example.com"),
                ),
            ),
            OFFICE,
            SMALL,
        ),
        Decision.READY,
        frozenset(),
        frozenset({"tlsa_failures_not_counted"}),
        mentions=("1400 sessions failed under DANE",),
    ),
    Case(
        "a domain already in enforce mode",
        tuple(replace(s, mode="enforce") for s in CLEAN),
        Decision.READY,
        frozenset(),
        frozenset({"already_enforce"}),
        enforced=True,
    ),
    Case(
        "enforce mode with a failing MX",
        tuple(failing(replace(s, mode="enforce"), EXPIRED_MX2) for s in CLEAN),
        Decision.NOT_READY,
        frozenset({"mx_configuration"}),
        frozenset({"already_enforce"}),
        enforced=True,
    ),
    Case(
        "failures below the tolerated rate are a note",
        (
            failing(replace(BIG, sessions_per_day=2000), Failure("validation-failure", 1)),
            *CLEAN[1:],
        ),
        Decision.READY,
        frozenset(),
        frozenset({"minor_sender_failures"}),
    ),
    Case(
        "failures without a policy string (mode unknown) count",
        (failing(replace(BIG, mode=None), Failure("starttls-not-supported", 9)), OFFICE, SMALL),
        Decision.NOT_READY,
        frozenset({"sender_failures"}),
        mentions=("starttls-not-supported on mx1.example.com",),
    ),
    Case(
        "failures under mode none do not count",
        (failing(replace(BIG, mode="none"), Failure("starttls-not-supported", 9)), OFFICE, SMALL),
        Decision.READY,
        frozenset(),
    ),
    Case(
        "only one sender",
        (BIG,),
        Decision.INSUFFICIENT_DATA,
        frozenset(),
        frozenset({"too_few_senders"}),
    ),
    Case(
        "no MTA-STS policy seen",
        tuple(replace(s, policy_type="no-policy-found", mode=None) for s in CLEAN),
        Decision.INSUFFICIENT_DATA,
        frozenset(),
        frozenset({"no_sts_reports"}),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_verdict(case: Case, data_dir: Path) -> None:
    build_store(data_dir, case.senders, days_back(END, case.days))
    verdict = domain_verdict(data_dir, "example.com", end=END, days=28)

    assert verdict.decision is case.decision, verdict.as_dict()
    assert {r.code for r in verdict.reasons if r.blocking} == case.blocking
    assert case.codes <= {r.code for r in verdict.reasons}
    text = " ".join(r.message for r in verdict.reasons)
    for mention in case.mentions:
        assert mention in text
    assert verdict.already_enforced is case.enforced
    assert verdict.next_steps
    json.dumps(verdict.as_dict())  # serialisable as it is


def test_sender_failure_names_the_mx_and_its_share(data_dir: Path) -> None:
    senders = (failing(BIG, Failure("certificate-host-mismatch", 30, mx="mx2.example.com")),)
    build_store(data_dir, senders + CLEAN[1:], days_back(END, 28))
    verdict = domain_verdict(data_dir, "example.com", end=END)
    (reason,) = [r for r in verdict.reasons if r.code == "sender_failures"]
    assert reason.evidence["mx"] == ["mx2.example.com"]
    assert reason.evidence["only_sender_on_mx"] == ["mx2.example.com"]
    assert reason.evidence["sessions"] == 30 * 28
    assert reason.evidence["sender_sessions"] == 900 * 28
    assert reason.evidence["failure_rate"] == pytest.approx(30 / 900)
    assert verdict.evidence["would_fail_sessions"] == 30 * 28
    assert verdict.evidence["sts_sessions"] == (900 + 400 + 60) * 28


def test_ready_lists_the_switch_steps_in_order(data_dir: Path) -> None:
    build_store(data_dir, CLEAN, days_back(END, 20))
    verdict = domain_verdict(data_dir, "example.com", end=END)
    assert verdict.decision is Decision.READY
    steps = " | ".join(verdict.next_steps)
    order = ["mode: enforce", "_mta-sts.example.com", "max_age", "report `mode: enforce`"]
    positions = [steps.index(s) for s in order]
    assert positions == sorted(positions)


def test_window_excludes_days_outside_it(data_dir: Path) -> None:
    """Failures before the window don't count; the window ends on `end`."""
    old_failure = replace(
        failing(BIG, EXPIRED_MX2), contact_domain="bigmail.example", days=[date(2026, 10, 1)]
    )
    build_store(data_dir, (*CLEAN, old_failure), days_back(END, 28))
    assert domain_verdict(data_dir, "example.com", end=END).decision is Decision.READY


# ---------------------------------------------------------------- the pure function

WINDOW = Window(date(2026, 11, 2), date(2026, 11, 29))


def evidence(days: int = 28, **changes: object) -> Evidence:
    base = Evidence(
        policy_domain="example.com",
        window=WINDOW,
        days_with_reports=days,
        sts_sessions=(
            SenderSessions("a.example", "A", "testing", days, 10_000, 0),
            SenderSessions("b.example", "B", "testing", days, 5_000, 0),
        ),
        sts_failures=(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_thresholds_are_configurable() -> None:
    short = evidence(days=3)
    assert decide(short).decision is Decision.INSUFFICIENT_DATA
    assert decide(short, Thresholds(min_days=3)).decision is Decision.READY


def test_mx_blame_needs_enough_senders() -> None:
    groups = tuple(
        FailureGroup(s, s.upper(), "testing", "certificate-expired", "mx9.example.com", None, 50)
        for s in ("a.example", "b.example")
    )
    verdict = decide(evidence(sts_failures=groups))
    assert [r.code for r in verdict.reasons if r.blocking] == ["mx_configuration"]
    # With three of every four senders needed, two of two still blame the MX; with a
    # minimum of three senders, they become two sender failures instead.
    strict = decide(evidence(sts_failures=groups), Thresholds(mx_min_senders=3))
    assert [r.code for r in strict.reasons if r.blocking] == ["sender_failures"] * 2


def test_policy_error_tolerance() -> None:
    errors = (FailureGroup("a.example", "A", "testing", "sts-policy-invalid", None, None, 2),)
    assert decide(evidence(sts_failures=errors)).decision is Decision.NOT_READY
    tolerant = decide(evidence(sts_failures=errors), Thresholds(max_policy_error_sessions=2))
    assert tolerant.decision is Decision.READY
    assert "policy_errors" in {r.code for r in tolerant.reasons}


def test_collect_evidence_on_an_empty_window(data_dir: Path) -> None:
    build_store(data_dir, CLEAN, days_back(END, 3))
    ev = collect_evidence(data_dir, "example.com", Window(date(2025, 1, 1), date(2025, 1, 28)))
    assert ev.days_with_reports == 0
    assert ev.sts_sessions == ()
    assert decide(ev).decision is Decision.INSUFFICIENT_DATA


# ---------------------------------------------------------------- the command


def test_verdict_command_exit_status_and_json(data_dir: Path) -> None:
    build_store(data_dir, (failing(BIG, EXPIRED_MX2), OFFICE, SMALL), days_back(END, 28))
    common = ("--data-dir", data_dir, "--end", "2026-11-29")
    out = run_cli("verdict", "example.com", *common, "--json", expect=1).output
    data = json.loads(out)
    assert data["decision"] == "not_ready"
    assert data["evidence"]["policy_domain"] == "example.com"
    assert data["reasons"][0]["blocking"] is True

    text = run_cli("verdict", "example.com", *common, expect=1).output
    assert "NOT ready to enforce" in text
    assert "certificate-expired on mx2.example.com" in text

    short = run_cli("verdict", "example.com", *common, "--days", "1", "--json", expect=1).output
    assert json.loads(short)["evidence"]["first_day"] == "2026-11-29"

    run_cli("verdict", "example.com", "--data-dir", data_dir, "--end", "2026-10-01", expect=2)


def test_verdict_command_ready_and_errors(data_dir: Path, tmp_path: Path) -> None:
    build_store(data_dir, CLEAN, days_back(END, 28))
    out = run_cli("verdict", "EXAMPLE.COM.", "--data-dir", data_dir, "--end", "2026-11-29")
    assert out.output.startswith("example.com: ready to enforce")
    missing = run_cli("verdict", "example.com", "--data-dir", tmp_path / "none", expect=3)
    assert "no database" in missing.output
    run_cli("verdict", "example.com", "--end", "29.11.2026", expect=2)


def test_verdict_command_thresholds(data_dir: Path) -> None:
    build_store(data_dir, CLEAN, days_back(END, 5))
    common = ("example.com", "--data-dir", data_dir, "--end", "2026-11-29", "--json")
    assert json.loads(run_cli("verdict", *common, expect=2).output)["reasons"][0]["code"] == (
        "too_few_days"
    )
    out = json.loads(run_cli("verdict", *common, "--min-days", "5").output)
    assert out["decision"] == "ready"
    assert out["evidence"]["thresholds"]["min_days"] == 5
