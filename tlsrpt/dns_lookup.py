"""Live DNS lookups (dnspython) for the domain check: TXT, MX and addresses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.nameserver
import dns.resolver

from tlsrpt.records import join_strings


class LookupFailed(Exception):
    """The DNS question got no usable answer (timeout, SERVFAIL, refused)."""


@dataclass(frozen=True)
class Nameserver:
    host: str
    port: int = 53

    @classmethod
    def parse(cls, text: str) -> Nameserver:
        """`HOST`, `HOST:PORT` or `[IPv6]:PORT`."""
        host, port = text, "53"
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port = rest.removeprefix(":") or "53"
        elif text.count(":") == 1:
            host, port = text.split(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{text!r} is not HOST or HOST:PORT")
        return cls(host, int(port))


@dataclass(frozen=True)
class Lookup:
    """Asks the given name servers, or the system's when none are given."""

    nameservers: Sequence[Nameserver] = ()
    timeout: float = 5.0

    def _resolver(self) -> dns.resolver.Resolver:
        resolver = dns.resolver.Resolver(configure=not self.nameservers)
        if self.nameservers:
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(ns.host, ns.port) for ns in self.nameservers
            ]
        resolver.timeout = self.timeout
        resolver.lifetime = self.timeout
        return resolver

    def _ask(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        try:  # building the resolver reads the system configuration, which may be missing
            return self._resolver().resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.exception.Timeout as exc:
            raise LookupFailed(f"{rdtype} {name}: no answer within {self.timeout:g} s") from exc
        except dns.exception.DNSException as exc:
            raise LookupFailed(f"{rdtype} {name}: {exc}") from exc

    def txt(self, name: str) -> list[str]:
        """Each TXT record's strings joined without spaces; [] when there is none."""
        answer = self._ask(name, "TXT")
        return [join_strings(r.strings) for r in answer] if answer else []

    def mx(self, domain: str) -> list[tuple[int, str]]:
        """(preference, host) sorted by preference; [] when there is none."""
        answer = self._ask(domain, "MX")
        if not answer:
            return []
        found = ((r.preference, r.exchange.to_text(omit_final_dot=True).lower()) for r in answer)
        return sorted(found)

    def addresses(self, host: str) -> list[str]:
        """IPv4 then IPv6 addresses of a host."""
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            answer = self._ask(host, rdtype)
            if answer:
                found += [r.to_text() for r in answer]
        return found
