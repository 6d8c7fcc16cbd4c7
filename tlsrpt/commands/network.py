"""Arguments and options shared by the commands that look things up live."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from tlsrpt.dns_lookup import Nameserver
from tlsrpt.hostnames import InvalidName, normalise_hostname

F = TypeVar("F", bound=Callable[..., Any])


def _domain_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return normalise_hostname(value, what="domain")
    except InvalidName as exc:
        raise click.BadParameter(str(exc)) from exc


def _nameservers(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[Nameserver, ...]:
    try:
        return tuple(Nameserver.parse(v) for v in value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


domain_argument = click.argument("domain", callback=_domain_name)


def network_options(func: F) -> F:
    """Where and how to look things up: DNS server, trusted CAs, ports, time limit."""
    options = [
        click.option(
            "--nameserver",
            "nameservers",
            multiple=True,
            callback=_nameservers,
            metavar="HOST[:PORT]",
            help="Ask this DNS server instead of the system's (repeatable).",
        ),
        click.option(
            "--ca-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Trust only the CA certificates in this PEM file (default: the system's).",
        ),
        click.option(
            "--https-port",
            type=click.IntRange(1, 65535),
            default=443,
            show_default=True,
            help="Port of the policy host mta-sts.DOMAIN.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(0.1, 600),
            default=10.0,
            show_default=True,
            help="Seconds allowed for each DNS question, the policy fetch and each MX probe.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except ssl.SSLError as exc:
        raise click.ClickException(f"--ca-file {ca_file}: not a PEM CA file ({exc})") from exc
