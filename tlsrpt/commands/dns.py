"""`tlsrpt dns`: the TXT records and the policy file to publish, checked before printing."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from tlsrpt.commands.network import domain_argument
from tlsrpt.options import json_option, print_json, user_errors
from tlsrpt.records import (
    STS_PREFIX,
    TLSRPT_PREFIX,
    RecordError,
    build_sts,
    build_tlsrpt,
    new_sts_id,
)
from tlsrpt.sts_policy import MAX_AGE_LIMIT, Mode, build_policy, policy_url

_TXT_STRING = 255
_DEFAULT_MAX_AGE = {Mode.TESTING: 86400, Mode.NONE: 86400, Mode.ENFORCE: 604800}


@click.command("dns", short_help="Print the TLS-RPT and MTA-STS records to publish.")
@domain_argument
@click.option(
    "--rua",
    multiple=True,
    required=True,
    metavar="URI",
    help="Where senders send reports: mailto:ADDRESS or https://URL (repeatable). "
    "',', '!' and ';' are percent-encoded for you.",
)
@click.option(
    "--mx",
    multiple=True,
    metavar="HOST",
    help="An MX host, or *.example.com for any one label under it (repeatable).",
)
@click.option(
    "--mode",
    type=click.Choice([m.value for m in Mode]),
    default=Mode.TESTING.value,
    show_default=True,
    help="testing: report only; enforce: senders refuse MXes that fail; none: withdraw.",
)
@click.option(
    "--max-age",
    type=int,
    help=f"Seconds senders may cache the policy, at most {MAX_AGE_LIMIT} "
    "(default: 86400 in testing, 604800 in enforce).",
)
@click.option("--id", "sts_id", help="The policy id (default: the current UTC time).")
@click.option(
    "--ttl", type=click.IntRange(60), default=3600, show_default=True, help="TTL for --zone."
)
@click.option("--zone", is_flag=True, help="Print BIND zone-file lines.")
@json_option
@user_errors(RecordError)
def dns_command(
    domain: str,
    rua: tuple[str, ...],
    mx: tuple[str, ...],
    mode: str,
    max_age: int | None,
    sts_id: str | None,
    ttl: int,
    zone: bool,
    as_json: bool,
) -> None:
    """Print the DNS records and the MTA-STS policy file to publish for DOMAIN.

    \b
    _smtp._tls.DOMAIN  TXT  where senders send their TLS reports (RFC 8460)
    _mta-sts.DOMAIN    TXT  announces the MTA-STS policy and its id (RFC 8461)
    https://mta-sts.DOMAIN/.well-known/mta-sts.txt   the policy file itself

    Everything printed is checked against the RFC grammar first.
    """
    policy_mode = Mode(mode)
    tlsrpt = build_tlsrpt(rua)
    sts = build_sts(sts_id or new_sts_id(datetime.now(UTC)))
    policy = build_policy(
        policy_mode, mx, _DEFAULT_MAX_AGE[policy_mode] if max_age is None else max_age
    )
    records = [
        (f"{TLSRPT_PREFIX}.{domain}", tlsrpt.text(), "where senders send their reports"),
        (f"{STS_PREFIX}.{domain}", sts.text(), "announces the policy; change id with each policy"),
    ]
    if as_json:
        print_json(
            {
                "domain": domain,
                "records": [
                    {
                        "name": name,
                        "type": "TXT",
                        "ttl": ttl,
                        "value": value,
                        "strings": _txt_strings(value),
                    }
                    for name, value, _ in records
                ],
                "policy_url": policy_url(domain),
                "policy": policy.text(),
                "mode": str(policy.mode),
                "mx": list(policy.mx),
                "max_age": policy.max_age,
            }
        )
        return
    if zone:
        for name, value, about in records:
            click.echo(f"; {about}")
            strings = " ".join(f'"{s}"' for s in _txt_strings(value))
            click.echo(f"{name}. {ttl} IN TXT {strings}")
        click.echo(f"; mta-sts.{domain} needs A/AAAA (or CNAME) records for the web server")
        click.echo(f"; that serves {policy_url(domain)}")
        return
    for name, value, about in records:
        click.echo(f"TXT record ({about})")
        click.echo(f"  name:  {name}")
        click.echo(f"  value: {value}")
        click.echo()
    click.echo(f"Policy file, served as text/plain with status 200 at {policy_url(domain)}")
    click.echo(f"(mta-sts.{domain} needs an address and a certificate valid for that name):")
    click.echo()
    click.echo(policy.text(), nl=False)


def _txt_strings(value: str) -> list[str]:
    """A TXT value as character-strings of at most 255 bytes (records are ASCII)."""
    return [value[i : i + _TXT_STRING] for i in range(0, len(value), _TXT_STRING)] or [""]
