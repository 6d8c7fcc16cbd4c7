"""The switch from `mode: testing` to `mode: enforce` (RFC 8461 §8.1): the new policy, the
new id, the order to publish them in, and what to watch afterwards."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tlsrpt.records import STS_PREFIX, StsRecord, build_sts, new_sts_id
from tlsrpt.sts_policy import MAX_AGE_LIMIT, Mode, StsPolicy, build_policy, policy_url

FIRST_ENFORCE_MAX_AGE = 7 * 86400  # a week: long enough to protect, short enough to undo


@dataclass(frozen=True)
class EnforcePlan:
    domain: str
    policy: StsPolicy
    record: StsRecord
    source: str
    steps: tuple[str, ...]
    watch: tuple[str, ...]
    unmatched_mx: tuple[str, ...] = ()
    """Live MX hosts no pattern of the new policy matches: enforce would refuse them."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "policy_url": policy_url(self.domain),
            "policy": self.policy.text(),
            "sts_record": {"name": f"{STS_PREFIX}.{self.domain}", "value": self.record.text()},
            "source": self.source,
            "steps": list(self.steps),
            "watch": list(self.watch),
            "unmatched_mx": list(self.unmatched_mx),
        }


def _duration(seconds: int) -> str:
    if seconds % 86400 == 0 and seconds >= 86400:
        days = seconds // 86400
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{seconds} s"


def plan_enforce(
    domain: str,
    mx: Sequence[str],
    now: datetime,
    *,
    max_age: int | None = None,
    current: StsPolicy | None = None,
    source: str = "the --mx options",
    mx_hosts: Sequence[str] = (),
) -> EnforcePlan:
    """Build the plan; `current` is the live policy, when known (its max_age says how long
    senders may keep applying it); `mx_hosts` are the domain's live MX hosts, when known."""
    if max_age is None:
        max_age = max(FIRST_ENFORCE_MAX_AGE, current.max_age if current else 0)
    policy = build_policy(Mode.ENFORCE, mx, max_age)
    record = build_sts(new_sts_id(now))
    name = f"{STS_PREFIX}.{domain}"
    old_age = _duration(current.max_age) if current else "the old policy's max_age"
    steps = (
        f"Publish the new policy at {policy_url(domain)} (below), served as text/plain.",
        f"Run `tlsrpt check {domain}`: the policy must read mode enforce and every MX must "
        "match a pattern and pass STARTTLS.",
        f"Only then change the TXT record {name} to: {record.text()}"
        " (senders fetch the policy again only when the id changes).",
        f"Over the next {old_age} (the max_age of the policy senders have cached) each "
        "sender's reports switch their policy-string to `mode: enforce`.",
        f"After some weeks without failures, raise max_age (up to {MAX_AGE_LIMIT}, a year): "
        "policy first, then a new id again.",
    )
    watch = (
        "Failures under `mode: enforce` (starttls-not-supported, certificate-expired, "
        "certificate-host-mismatch, certificate-not-trusted, validation-failure): each is "
        "mail a sender now delays or bounces. Group them by receiving-mx-hostname.",
        "sts-policy-fetch-error, sts-webpki-invalid, sts-policy-invalid: senders that cannot "
        "read the policy and so do not enforce it. Keep mta-sts." + domain + " and its "
        "certificate up.",
        "Senders still reporting `mode: testing` after the old max_age has passed.",
        "MX certificates: an expired or misnamed certificate now stops mail "
        f"(`tlsrpt check {domain}` shows the days left).",
        "Before adding or renaming an MX: add it to the policy, publish, change the id, and "
        f"wait max_age ({_duration(max_age)}) before mail goes to it.",
        "To back out: publish `mode: testing` with a new id; senders that cached the enforce "
        "policy keep it until they fetch again.",
    )
    unmatched = tuple(h for h in mx_hosts if policy.matching_pattern(h) is None)
    return EnforcePlan(domain, policy, record, source, steps, watch, unmatched)
