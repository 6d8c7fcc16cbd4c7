"""DKIM verification of report emails (RFC 8460 §3) with dkimpy and dnspython.

A report passes when one signature verifies, carries no `l=` (dkimpy refuses it in TLSRPT
mode), and its d= aligns with the submitter: the TLS-Report-Submitter header or the
contact-info domain, one a label-suffix of the other. Keys with `s=tlsrpt`, `s=email` or
`s=*` are accepted.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingest.model import DkimResult, DkimVerdict, ParsedReport

if TYPE_CHECKING:
    import dns.resolver

# dkimpy and dnspython are imported when a signature is first checked: an import of
# thousands of unsigned reports (or plain JSON files) should not pay for them.

_D_TAG = re.compile(rb"(?:^|;)\s*d\s*=\s*([^;\s]+)", re.IGNORECASE)
_L_TAG = re.compile(rb"(?:^|;)\s*l\s*=", re.IGNORECASE)
_QUIET = logging.getLogger("ingest.dkim")  # dkimpy logs every failure at ERROR level
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False
_HAS_SIGNATURE = re.compile(rb"^dkim-signature\s*:", re.IGNORECASE | re.MULTILINE)


def has_dkim_signature(raw: bytes) -> bool:
    return _HAS_SIGNATURE.search(raw) is not None


@dataclass
class DkimChecker:
    """Verifies report emails; caches key lookups for its lifetime."""

    nameservers: tuple[str, ...] = ()
    port: int = 53
    timeout: float = 3.0
    _cache: dict[str, bytes | None] = field(default_factory=dict)
    _temp_failure: bool = False

    def _resolver(self) -> dns.resolver.Resolver:
        import dns.resolver

        resolver = dns.resolver.Resolver(configure=not self.nameservers)
        if self.nameservers:
            resolver.nameservers = list(self.nameservers)
            resolver.port = self.port
        resolver.lifetime = self.timeout
        return resolver

    def _txt(self, name: bytes, timeout: float = 5) -> bytes | None:
        import dns.exception
        import dns.resolver

        qname = name.decode("ascii", "replace").rstrip(".")
        if qname in self._cache:
            return self._cache[qname]
        try:
            answer = self._resolver().resolve(qname, "TXT")
            value: bytes | None = b"".join(b"".join(r.strings) for r in answer)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            value = None
        except dns.exception.DNSException:
            self._temp_failure = True
            return None
        self._cache[qname] = value
        return value

    def verify(self, raw: bytes, parsed: ParsedReport) -> DkimVerdict:
        if not _HAS_SIGNATURE.search(raw):
            return DkimVerdict(DkimResult.NONE)
        import dkim

        wanted = _submitter_domains(parsed)
        checker = dkim.DKIM(raw, logger=_QUIET, tlsrpt=True, timeout=int(self.timeout) or 1)
        signatures = [h for h in checker.headers if h[0].lower() == b"dkim-signature"]
        self._temp_failure = False
        last_domain: str | None = None
        reason = "signature did not verify"
        for index, (_, value) in enumerate(signatures):
            match = _D_TAG.search(value)
            domain = match.group(1).decode("ascii", "replace").lower() if match else None
            last_domain = domain
            if _L_TAG.search(value):
                reason = "the signature uses l= (RFC 8460 §3 forbids it)"
                continue
            try:
                ok = checker.verify(idx=index, dnsfunc=self._txt)
            except dkim.DKIMException as exc:
                ok, reason = False, str(exc)
            if not ok:
                continue
            if domain and _aligned(domain, wanted):
                return DkimVerdict(DkimResult.PASS, domain)
            reason = f"d={domain} is not aligned with the submitter ({', '.join(sorted(wanted))})"
        if self._temp_failure:
            return DkimVerdict(DkimResult.TEMPERROR, last_domain, "DNS lookup of the key failed")
        return DkimVerdict(DkimResult.FAIL, last_domain, reason[:200])


def _submitter_domains(parsed: ParsedReport) -> set[str]:
    domains = {parsed.report.submitter}
    if parsed.mail and parsed.mail.tls_report_submitter:
        domains.add(parsed.mail.tls_report_submitter)
    return domains


def _aligned(d: str, submitters: set[str]) -> bool:
    d = d.rstrip(".")
    if "." not in d:
        return False  # a bare TLD aligns with nothing
    return any(d == s or s.endswith("." + d) or d.endswith("." + s) for s in submitters)
