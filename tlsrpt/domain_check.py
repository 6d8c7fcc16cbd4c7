"""Checking a domain's TLS-RPT and MTA-STS setup live, as senders see it: a checklist of
items, each passing, warning or failing, with how to fix it."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from tlsrpt.dns_lookup import Lookup, LookupFailed
from tlsrpt.mx_probe import TlsProbe, probe_mx
from tlsrpt.policy_fetch import FetchFailed, fetch_policy
from tlsrpt.records import (
    STS_PREFIX,
    STS_VERSION,
    TLSRPT_PREFIX,
    TLSRPT_VERSION,
    RecordError,
    encode_rua_uri,
    parse_sts,
    parse_tlsrpt,
    rua_target,
    select_record,
)
from tlsrpt.sts_policy import Mode, StsPolicy, parse_policy, policy_url

EXPIRY_WARNING_DAYS = 14
ENFORCE_MIN_MAX_AGE = 7 * 86400


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class CheckItem:
    name: str
    status: Status
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "status": str(self.status),
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class CheckSettings:
    lookup: Lookup
    tls_context: ssl.SSLContext
    https_port: int = 443
    smtp_port: int = 25
    timeout: float = 10.0
    mailboxes: tuple[str, ...] = ()
    https_urls: tuple[str, ...] = ()


@dataclass
class Checklist:
    domain: str
    items: list[CheckItem] = field(default_factory=list)
    rua: tuple[str, ...] = ()
    sts_id: str | None = None
    policy: StsPolicy | None = None
    policy_text: str | None = None
    mx: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(item.status is not Status.FAIL for item in self.items)

    def add(self, name: str, status: Status, detail: str, fix: str | None = None) -> None:
        self.items.append(CheckItem(name, status, detail, fix))

    def as_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "ok": self.ok,
            "items": [item.as_dict() for item in self.items],
            "rua": list(self.rua),
            "sts_id": self.sts_id,
            "policy": self.policy_text,
            "mx": [{"preference": p, "host": h} for p, h in self.mx],
        }


def check_domain(domain: str, settings: CheckSettings, now: datetime | None = None) -> Checklist:
    """Look everything up and return the checklist (never raises for network trouble)."""
    checklist = Checklist(domain)
    _check_tlsrpt(checklist, settings)
    _check_sts_record(checklist, settings)
    _check_policy(checklist, settings)
    _check_mx(checklist, settings, now or datetime.now(UTC))
    return checklist


def _dns_fix(name: str) -> str:
    return f"make sure the name servers for {name} answer"


def _check_tlsrpt(checklist: Checklist, settings: CheckSettings) -> None:
    name = f"{TLSRPT_PREFIX}.{checklist.domain}"
    fix = f"publish one TXT record at {name}: `tlsrpt dns {checklist.domain} --rua ...` prints it"
    try:
        record = parse_tlsrpt(select_record(settings.lookup.txt(name), TLSRPT_VERSION))
    except LookupFailed as exc:
        checklist.add("tls-rpt record", Status.FAIL, str(exc), _dns_fix(name))
        return
    except RecordError as exc:
        checklist.add("tls-rpt record", Status.FAIL, f"{name}: {exc}", fix)
        return
    checklist.rua = record.rua
    checklist.add("tls-rpt record", Status.PASS, f"{name}: {record.text()}")
    _check_rua(checklist, settings, record.rua)


def _check_rua(checklist: Checklist, settings: CheckSettings, rua: Sequence[str]) -> None:
    ours = {rua_target(encode_rua_uri(m)) for m in settings.mailboxes}
    ours |= {rua_target(encode_rua_uri(u)) for u in settings.https_urls}
    if not ours:
        checklist.add(
            "tls-rpt rua",
            Status.WARN,
            "not compared with this collector: no --mailbox or --https-url given",
            "pass the collector's report address(es) with --mailbox ADDR / --https-url URL",
        )
        return
    hits = [uri for uri in rua if rua_target(uri) in ours]
    others = [uri for uri in rua if uri not in hits]
    if not hits:
        checklist.add(
            "tls-rpt rua",
            Status.FAIL,
            f"no rua URI reaches this collector ({', '.join(sorted(ours))}); "
            f"reports go to {', '.join(rua)}",
            "add the collector's address to rua= in the TLS-RPT record",
        )
        return
    detail = f"reports reach this collector at {', '.join(hits)}"
    if others:
        detail += f"; also sent to {', '.join(others)}"
    if any(u.lower().startswith("mailto:") for u in hits) and any(
        u.lower().startswith("https:") for u in hits
    ):
        detail += " (mailto and https both: expect each report twice, stored once)"
    checklist.add("tls-rpt rua", Status.PASS, detail)


def _check_sts_record(checklist: Checklist, settings: CheckSettings) -> None:
    name = f"{STS_PREFIX}.{checklist.domain}"
    try:
        record = parse_sts(select_record(settings.lookup.txt(name), STS_VERSION))
    except LookupFailed as exc:
        checklist.add("mta-sts record", Status.FAIL, str(exc), _dns_fix(name))
        return
    except RecordError as exc:
        checklist.add(
            "mta-sts record",
            Status.FAIL,
            f"{name}: {exc}",
            f"publish one TXT record at {name}: `v=STSv1; id=...;` "
            f"(`tlsrpt dns {checklist.domain}` prints it)",
        )
        return
    checklist.sts_id = record.id
    checklist.add("mta-sts record", Status.PASS, f"{name}: {record.text()}")


def _check_policy(checklist: Checklist, settings: CheckSettings) -> None:
    domain = checklist.domain
    url = policy_url(domain)
    try:
        addresses = settings.lookup.addresses(f"mta-sts.{domain}")
        fetched = fetch_policy(
            domain,
            addresses,
            context=settings.tls_context,
            port=settings.https_port,
            timeout=settings.timeout,
        )
    except LookupFailed as exc:
        checklist.add("policy fetch", Status.FAIL, str(exc), _dns_fix(f"mta-sts.{domain}"))
        return
    except FetchFailed as exc:
        fix = (
            f"serve a certificate valid for mta-sts.{domain} from a trusted CA"
            if exc.webpki
            else f"serve the policy itself at {url}: status 200, Content-Type text/plain, "
            "no redirect, under 64 KB"
        )
        checklist.add("policy fetch", Status.FAIL, str(exc), fix)
        return
    checklist.policy_text = fetched.text
    checklist.add("policy fetch", Status.PASS, f"{fetched.url}: 200, text/plain, valid certificate")
    reading = parse_policy(fetched.text)
    notes = f" (ignored: {'; '.join(reading.notes)})" if reading.notes else ""
    if reading.policy is None:
        checklist.add(
            "policy",
            Status.FAIL,
            "; ".join(reading.errors) + notes,
            f"fix the policy file (`tlsrpt dns {domain} --mx ...` prints a valid one)",
        )
        return
    policy = reading.policy
    checklist.policy = policy
    summary = f"mode {policy.mode}, max_age {policy.max_age}, mx {', '.join(policy.mx) or '-'}"
    if policy.mode is Mode.NONE:
        checklist.add("policy", Status.WARN, summary + " (MTA-STS switched off)" + notes)
    elif policy.mode is Mode.ENFORCE and policy.max_age < ENFORCE_MIN_MAX_AGE:
        checklist.add(
            "policy",
            Status.WARN,
            summary + notes,
            f"in enforce mode use a max_age of at least {ENFORCE_MIN_MAX_AGE} (a week)",
        )
    else:
        status = Status.WARN if reading.notes else Status.PASS
        checklist.add("policy", status, summary + notes)


def _check_mx(checklist: Checklist, settings: CheckSettings, now: datetime) -> None:
    domain = checklist.domain
    try:
        checklist.mx = settings.lookup.mx(domain)
    except LookupFailed as exc:
        checklist.add("mx records", Status.FAIL, str(exc), _dns_fix(domain))
        return
    hosts = [host for _, host in checklist.mx if host not in ("", ".")]
    if not hosts:
        detail = (
            f"{domain} has a null MX (RFC 7505): it takes no mail"
            if checklist.mx
            else f"{domain} has no MX record"
        )
        checklist.add("mx records", Status.FAIL, detail, f"publish the MX records of {domain}")
        return
    checklist.add("mx records", Status.PASS, ", ".join(f"{p} {h}" for p, h in checklist.mx))
    policy = checklist.policy
    for host in hosts:
        if policy is not None and policy.mode is not Mode.NONE:
            _check_mx_pattern(checklist, policy, host)
        _check_starttls(checklist, settings, host, now)
    if policy is not None:
        unused = [p for p in policy.mx if not any(policy.matching_pattern(h) == p for h in hosts)]
        if unused:
            checklist.add(
                "policy mx",
                Status.WARN,
                f"no MX matches {', '.join(unused)}",
                "remove patterns you no longer use (policy first, then a new id)",
            )


def _check_mx_pattern(checklist: Checklist, policy: StsPolicy, host: str) -> None:
    pattern = policy.matching_pattern(host)
    if pattern is None:
        checklist.add(
            f"mx {host}",
            Status.FAIL,
            f"no policy mx pattern matches {host} (patterns: {', '.join(policy.mx)}); "
            "in enforce mode senders refuse to deliver to it",
            f"add `mx: {host}` to the policy, publish it, then change the id",
        )
    else:
        checklist.add(f"mx {host}", Status.PASS, f"matches policy pattern {pattern}")


def _check_starttls(
    checklist: Checklist, settings: CheckSettings, host: str, now: datetime
) -> None:
    try:
        addresses = settings.lookup.addresses(host)
    except LookupFailed as exc:
        checklist.add(f"starttls {host}", Status.FAIL, str(exc), _dns_fix(host))
        return
    if not addresses:
        checklist.add(
            f"starttls {host}", Status.FAIL, f"{host} has no A or AAAA record", _dns_fix(host)
        )
        return
    for address in addresses:
        probe = probe_mx(
            host,
            address,
            context=settings.tls_context,
            port=settings.smtp_port,
            timeout=settings.timeout,
        )
        _add_probe(checklist, probe, now, len(addresses) > 1)


def _add_probe(checklist: Checklist, probe: TlsProbe, now: datetime, show_address: bool) -> None:
    name = f"starttls {probe.host}" + (f" [{probe.address}]" if show_address else "")
    days = probe.days_left(now)
    expiry = ""
    if probe.not_after is not None and days is not None:
        when = probe.not_after.strftime("%Y-%m-%d")
        expiry = f"expires {when} ({days} days)" if days >= 0 else f"expired {when}"
    names = f"names {', '.join(probe.names)}" if probe.names else ""
    facts = ", ".join(x for x in (probe.tls_version or "", names, expiry) if x)
    if probe.result_type is not None:
        detail = f"{probe.result_type}: {probe.detail}" + (f" ({facts})" if facts else "")
        checklist.add(name, Status.FAIL, detail, _probe_fix(probe))
    elif days is not None and days < EXPIRY_WARNING_DAYS:
        checklist.add(name, Status.WARN, facts, f"renew the certificate of {probe.host} now")
    else:
        checklist.add(name, Status.PASS, facts)


def _probe_fix(probe: TlsProbe) -> str:
    host = probe.host
    return {
        "certificate-expired": f"renew the certificate of {host}",
        "certificate-host-mismatch": f"serve a certificate whose names include {host}",
        "certificate-not-trusted": (
            f"serve a certificate for {host} from a public CA, with its intermediate chain"
        ),
        "starttls-not-supported": f"enable STARTTLS on {host}",
        "no-connection": (
            f"make {host} answer SMTP on port 25 (or check that port 25 is not blocked "
            "from where you run this check)"
        ),
    }.get(probe.result_type or "", f"check the TLS configuration of {host}")
