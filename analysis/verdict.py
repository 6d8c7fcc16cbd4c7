"""Is it safe to move the MTA-STS policy from `testing` to `enforce`?

`decide` is a pure function from `Evidence` and `Thresholds` to a `Verdict`; it opens no
database. `domain_verdict` is the convenience that collects the evidence first. How to
read the result: docs/verdict.md.

What counts (RFC 8461 §5, spec digest §5):
* Only `sts` policy entries for the domain. Failures under such a policy applied in
  `testing` mode are sessions `enforce` would have refused; under `enforce` they were
  refused. Entries without a policy string (mode unknown) count as well; `mode: none` does
  not (the sender applies no policy).
* `sts-policy-fetch-error`, `sts-webpki-invalid`, `sts-policy-invalid`: the sender cannot
  get the policy, so enforce would not protect its mail. Fix these first.
* An MX where most senders fail points to our configuration (certificate, SAN, MX missing
  from the policy); failures of one sender only point to that sender.
* `tlsa` (DANE) failures are listed but never count against STS enforce.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

from analysis.evidence import POLICY_ERRORS, Evidence, FailureGroup, collect_evidence
from analysis.window import days_ending


class Decision(StrEnum):
    READY = "ready"
    NOT_READY = "not_ready"
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When the evidence is enough, and how much failure is tolerated."""

    min_days: int = 14
    """UTC days with `sts` reports needed in the window (RFC 8461 advises watching a
    testing policy for weeks; two weeks covers weekly traffic patterns)."""
    min_senders: int = 2
    """Distinct sending organizations needed."""
    min_sessions: int = 1000
    """`sts` sessions (successful + failed) needed over the window."""
    max_policy_error_sessions: int = 0
    """Sessions with a policy fetch/validation error tolerated (any means a sender cannot
    get the policy)."""
    max_sender_failure_rate: float = 0.001
    """Share of a sender's sessions that may fail (0.1 %) before it blocks enforce; below
    it the failures are listed as a note."""
    mx_sender_share: float = 0.5
    """An MX is blamed on our configuration when at least this share of the senders
    fail there..."""
    mx_min_senders: int = 2
    """...and at least this many senders (one sender alone proves nothing about the MX)."""


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    blocking: bool = False
    """True when this reason alone stops enforce (decision not_ready)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "blocking": self.blocking,
            "evidence": self.evidence,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    reasons: tuple[Reason, ...]
    evidence: dict[str, Any]
    next_steps: tuple[str, ...]

    @property
    def already_enforced(self) -> bool:
        return bool(self.evidence.get("already_enforced"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision.value,
            "reasons": [r.as_dict() for r in self.reasons],
            "evidence": self.evidence,
            "next_steps": list(self.next_steps),
        }


def _pct(rate: float) -> str:
    return f"{100 * rate:.2f} %"


def _sender_name(org: str, submitter: str) -> str:
    return org if org.lower() == submitter.lower() else f"{org} ({submitter})"


def _group_rows(groups: list[FailureGroup]) -> list[dict[str, Any]]:
    return [
        {
            "submitter": g.submitter,
            "organization_name": g.organization_name,
            "policy_mode": g.policy_mode,
            "result_type": g.result_type,
            "receiving_mx_hostname": g.receiving_mx_hostname,
            "receiving_ip": g.receiving_ip,
            "sessions": g.sessions,
            "reason_codes": list(g.reason_codes),
        }
        for g in groups
    ]


def _policy_error_reason(errors: list[FailureGroup], limit: int) -> Reason | None:
    total = sum(g.sessions for g in errors)
    if not errors or total == 0:
        return None
    by_sender: Counter[str] = Counter()
    names: dict[str, str] = {}
    for g in errors:
        by_sender[g.submitter] += g.sessions
        names[g.submitter] = _sender_name(g.organization_name, g.submitter)
    types = sorted({g.result_type for g in errors})
    worst = ", ".join(f"{names[s]}: {n}" for s, n in by_sender.most_common(5))
    return Reason(
        code="policy_errors",
        message=(
            f"{total} sessions from {len(by_sender)} sender(s) could not get the MTA-STS "
            f"policy ({', '.join(types)}); enforce would not protect their mail. "
            f"Most affected: {worst}."
        ),
        evidence={
            "sessions": total,
            "senders": dict(by_sender.most_common()),
            "result_types": types,
            "failures": _group_rows(errors),
        },
        blocking=total > limit,
    )


def _mx_reasons(
    failures: list[FailureGroup], senders: set[str], t: Thresholds
) -> tuple[list[Reason], set[str]]:
    """MXes where most senders fail: our configuration. Returns the reasons and the MXes."""
    by_mx: dict[str, list[FailureGroup]] = defaultdict(list)
    for g in failures:
        by_mx[g.mx].append(g)
    needed = max(t.mx_min_senders, math.ceil(t.mx_sender_share * len(senders)))
    reasons, blamed = [], set()
    for mx, groups in sorted(by_mx.items()):
        failing = {g.submitter for g in groups}
        if mx == "(not reported)" or len(failing) < needed:
            continue
        blamed.add(mx)
        sessions = sum(g.sessions for g in groups)
        types = Counter[str]()
        for g in groups:
            types[g.result_type] += g.sessions
        kinds = ", ".join(f"{k} ({n})" for k, n in types.most_common())
        reasons.append(
            Reason(
                code="mx_configuration",
                message=(
                    f"MX {mx} fails for {len(failing)} of {len(senders)} senders "
                    f"({sessions} sessions: {kinds}): this points to our side, e.g. its "
                    "certificate, the names in it, or the MX missing from the policy."
                ),
                evidence={
                    "mx": mx,
                    "receiving_ips": sorted({g.receiving_ip for g in groups if g.receiving_ip}),
                    "failing_senders": sorted(failing),
                    "senders": len(senders),
                    "sessions": sessions,
                    "result_types": dict(types.most_common()),
                    "failures": _group_rows(groups),
                },
                blocking=True,
            )
        )
    return reasons, blamed


def _sender_reasons(
    failures: list[FailureGroup],
    volume: dict[str, int],
    failing_per_mx: dict[str, set[str]],
    t: Thresholds,
) -> list[Reason]:
    """Failures not explained by a misconfigured MX, per sender."""
    by_sender: dict[str, list[FailureGroup]] = defaultdict(list)
    for g in failures:
        by_sender[g.submitter].append(g)
    reasons = []
    ranked = sorted(by_sender.items(), key=lambda kv: -sum(g.sessions for g in kv[1]))
    for submitter, groups in ranked:
        sessions = sum(g.sessions for g in groups)
        if sessions == 0:
            continue
        total = max(volume.get(submitter, 0), sessions)
        rate = sessions / total
        name = _sender_name(groups[0].organization_name, submitter)
        where = Counter[tuple[str, str]]()
        for g in groups:
            where[(g.result_type, g.mx)] += g.sessions
        detail = "; ".join(f"{rt} on {mx}: {n}" for (rt, mx), n in where.most_common(5))
        mxes = sorted({g.mx for g in groups})
        alone = [mx for mx in mxes if failing_per_mx.get(mx, set()) == {submitter}]
        blocking = rate > t.max_sender_failure_rate
        verb = "failed" if {g.policy_mode for g in groups} == {"enforce"} else "would have failed"
        message = (
            f"{name}: {sessions} of its {total} sessions ({_pct(rate)}) {verb} under "
            f"enforce ({detail})."
        )
        if alone:
            message += (
                f" Only this sender fails on {', '.join(alone)}: likely its side (e.g. an "
                "outdated CA bundle), but check that MX's certificate too; backup MXes see "
                "little traffic."
            )
        if not blocking:
            message += f" Below the tolerated {_pct(t.max_sender_failure_rate)}."
        reasons.append(
            Reason(
                code="sender_failures" if blocking else "minor_sender_failures",
                message=message,
                evidence={
                    "submitter": submitter,
                    "organization_name": groups[0].organization_name,
                    "sessions": sessions,
                    "sender_sessions": total,
                    "failure_rate": rate,
                    "mx": mxes,
                    "only_sender_on_mx": alone,
                    "failures": _group_rows(groups),
                },
                blocking=blocking,
            )
        )
    return reasons


def _next_steps(
    domain: str, decision: Decision, enforced: bool, reasons: list[Reason]
) -> list[str]:
    codes = {r.code for r in reasons if r.blocking}
    if decision is Decision.READY and enforced:
        return [
            "The policy is already enforced: keep the weekly report running, since every "
            "failure now means mail refused or delayed.",
            "Raise max_age (e.g. to 1209600, two weeks, or more) if it is still short.",
        ]
    if decision is Decision.READY:
        return [
            f"Publish the policy with `mode: enforce` at "
            f"https://mta-sts.{domain}/.well-known/mta-sts.txt (same mx lines).",
            f"Then change the id in the `_mta-sts.{domain}` TXT record, so that senders "
            "fetch the new policy.",
            "Raise max_age (e.g. from one week to 1209600, two weeks, or more) once "
            "enforce has run without failures for a while.",
            "Watch senders report `mode: enforce` in their policy strings (the 'policies "
            "applied' table of `tlsrpt report`): about a day, at most the old max_age.",
        ]
    steps = []
    if "policy_errors" in codes:
        steps.append(
            f"First make the policy reachable: https://mta-sts.{domain}/.well-known/"
            "mta-sts.txt must answer HTTP 200 with text/plain, without redirects, over a "
            f"certificate valid for mta-sts.{domain}, and parse as a valid STSv1 policy."
        )
    if "mx_configuration" in codes:
        steps.append(
            "Fix the MX(es) failing for most senders: a certificate from a public CA, not "
            "expired, whose names include the MX hostname, STARTTLS offered, and the MX "
            "listed in the policy's mx lines."
        )
    if "sender_failures" in codes:
        steps.append(
            "Look at the senders failing alone: check the MX they fail on, then contact "
            "them (or accept that enforce will delay their mail)."
        )
    if decision is Decision.INSUFFICIENT_DATA or any(r.code.startswith("too_few") for r in reasons):
        steps.append("Keep collecting reports until the thresholds are met, then ask again.")
    if "no_sts_reports" in {r.code for r in reasons}:
        steps.insert(
            0,
            f"Publish an MTA-STS policy in `mode: testing` (the `_mta-sts.{domain}` TXT "
            "record and the policy file) and a TLS-RPT record, then wait for reports.",
        )
    if decision is Decision.NOT_READY:
        steps.append("After each fix, let a few days of reports come in and run the verdict again.")
    return steps


def decide(evidence: Evidence, thresholds: Thresholds | None = None) -> Verdict:
    """The verdict for the evidence: ready, not_ready or insufficient_data, with reasons."""
    t = thresholds or Thresholds()
    applied = [s for s in evidence.sts_sessions if s.policy_mode != "none"]
    senders = {s.submitter for s in applied}
    sessions = sum(s.sessions for s in applied)
    volume: Counter[str] = Counter()
    mode_sessions: Counter[str] = Counter()
    for s in evidence.sts_sessions:
        mode_sessions[s.policy_mode or "unknown"] += s.sessions
        if s.policy_mode != "none":
            volume[s.submitter] += s.sessions
    enforced = mode_sessions["enforce"] > mode_sessions["testing"]

    counted = [g for g in evidence.sts_failures if g.policy_mode != "none"]
    policy_errors = [g for g in counted if g.result_type in POLICY_ERRORS]
    negotiation = [g for g in counted if g.result_type not in POLICY_ERRORS and g.sessions > 0]
    would_fail = sum(g.sessions for g in negotiation)

    reasons: list[Reason] = []
    if enforced:
        reasons.append(
            Reason(
                code="already_enforce",
                message=(
                    f"Senders already apply {evidence.policy_domain}'s policy in enforce mode "
                    f"({mode_sessions['enforce']} of {sessions} sessions); failures below were "
                    "refused, not only reported."
                ),
                evidence={"sessions_by_mode": dict(mode_sessions)},
            )
        )
    if not evidence.sts_sessions:
        reasons.append(
            Reason(
                code="no_sts_reports",
                message=(
                    f"No sender reported applying an MTA-STS policy for "
                    f"{evidence.policy_domain} in this window"
                    + (
                        f" ({evidence.no_policy_sessions} sessions found no policy)."
                        if evidence.no_policy_sessions
                        else "."
                    )
                ),
                evidence={"no_policy_sessions": evidence.no_policy_sessions},
            )
        )

    error_reason = _policy_error_reason(policy_errors, t.max_policy_error_sessions)
    if error_reason:
        reasons.append(error_reason)
    mx_reasons, blamed = _mx_reasons(negotiation, senders, t)
    reasons.extend(mx_reasons)
    failing_per_mx: dict[str, set[str]] = defaultdict(set)
    for g in negotiation:
        failing_per_mx[g.mx].add(g.submitter)
    reasons.extend(
        _sender_reasons([g for g in negotiation if g.mx not in blamed], volume, failing_per_mx, t)
    )

    if evidence.tlsa_failures:
        tlsa_sessions = sum(g.sessions for g in evidence.tlsa_failures)
        reasons.append(
            Reason(
                code="tlsa_failures_not_counted",
                message=(
                    f"{tlsa_sessions} sessions failed under DANE (tlsa) policies of the MX "
                    "hosts; DANE has no testing mode and is judged apart, so they do not "
                    "count against MTA-STS enforce."
                ),
                evidence={
                    "sessions": tlsa_sessions,
                    "mx": sorted({g.mx for g in evidence.tlsa_failures}),
                    "failures": _group_rows(list(evidence.tlsa_failures)),
                },
            )
        )

    shortfalls = [
        ("too_few_days", evidence.days_with_reports, t.min_days, "days with reports"),
        ("too_few_senders", len(senders), t.min_senders, "sending organizations"),
        ("too_few_sessions", sessions, t.min_sessions, "STS sessions"),
    ]
    insufficient = False
    for code, have, need, what in shortfalls:
        if have < need:
            insufficient = True
            reasons.append(
                Reason(
                    code=code,
                    message=f"Only {have} {what} in {evidence.window.label}; at least {need} "
                    "are needed to judge.",
                    evidence={"have": have, "need": need},
                )
            )

    if any(r.blocking for r in reasons):
        decision = Decision.NOT_READY
    elif insufficient or not evidence.sts_sessions:
        decision = Decision.INSUFFICIENT_DATA
    else:
        decision = Decision.READY
    if decision is Decision.READY and not reasons:
        reasons.append(
            Reason(
                code="clean",
                message=(
                    f"{sessions} STS sessions from {len(senders)} senders over "
                    f"{evidence.days_with_reports} days, none of which would have failed "
                    "under enforce, and every sender could fetch the policy."
                ),
            )
        )
    reasons.sort(key=lambda r: not r.blocking)

    summary: dict[str, Any] = {
        "policy_domain": evidence.policy_domain,
        "first_day": evidence.window.first.isoformat(),
        "last_day": evidence.window.last.isoformat(),
        "days_with_reports": evidence.days_with_reports,
        "senders": len(senders),
        "sts_sessions": sessions,
        "sessions_by_mode": dict(mode_sessions),
        "would_fail_sessions": would_fail,
        "would_fail_rate": would_fail / sessions if sessions else None,
        "policy_error_sessions": sum(g.sessions for g in policy_errors),
        "tlsa_failed_sessions": sum(g.sessions for g in evidence.tlsa_failures),
        "no_policy_sessions": evidence.no_policy_sessions,
        "already_enforced": enforced,
        "thresholds": {
            "min_days": t.min_days,
            "min_senders": t.min_senders,
            "min_sessions": t.min_sessions,
            "max_policy_error_sessions": t.max_policy_error_sessions,
            "max_sender_failure_rate": t.max_sender_failure_rate,
            "mx_sender_share": t.mx_sender_share,
            "mx_min_senders": t.mx_min_senders,
        },
    }
    return Verdict(
        decision=decision,
        reasons=tuple(reasons),
        evidence=summary,
        next_steps=tuple(_next_steps(evidence.policy_domain, decision, enforced, reasons)),
    )


def domain_verdict(
    data_dir: Path,
    domain: str,
    *,
    end: date | None = None,
    days: int = 28,
    thresholds: Thresholds | None = None,
) -> Verdict:
    """The verdict for `domain` over the `days` UTC days ending with `end` (default:
    yesterday), from the store in `data_dir`."""
    window = days_ending(end, days)
    return decide(collect_evidence(data_dir, domain, window), thresholds)
