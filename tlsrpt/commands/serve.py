"""`tlsrpt serve`: run the collector (SMTP and HTTPS listeners)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ingest.collector_lock import DataDirBusy
from ingest.limits import MB
from ingest.reception import IntakeFailed
from tlsrpt.config import ConfigError, ListenError, ServeConfig, load_toml, parse_listen
from tlsrpt.options import COMMON_ERRORS, DATA_DIR_ENV, user_errors

F = TypeVar("F", bound=Callable[..., Any])

_KNOWN: set[str] = set()


def _load_config_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is None:
        return
    try:
        ctx.default_map = {**(ctx.default_map or {}), **load_toml(value, _KNOWN)}
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx, param) from exc


def _option(*decls: str, env: str | None = None, **kwargs: Any) -> Callable[[F], F]:
    return click.option(*decls, envvar=env, show_envvar=env is not None, **kwargs)


@click.command("serve")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    envvar="TLSRPT_CONFIG",
    show_envvar=True,
    is_eager=True,
    expose_value=False,
    callback=_load_config_file,
    help="TOML file with any of these options (keys without the dashes, optionally "
    "under [serve]). Command line and environment win over it.",
)
@_option(
    "--data-dir",
    env=DATA_DIR_ENV,
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data"),
    show_default=True,
    help="Folder holding the database, spool and quarantine.",
)
@_option(
    "--smtp-listen",
    env="TLSRPT_SMTP_LISTEN",
    default="127.0.0.1:2525",
    show_default=True,
    metavar="HOST:PORT",
    help="SMTP listener for mailto: reports (port 0: any free port).",
)
@_option(
    "--https-listen",
    env="TLSRPT_HTTPS_LISTEN",
    default="127.0.0.1:8443",
    show_default=True,
    metavar="HOST:PORT",
    help="HTTPS listener for https: reports.",
)
@_option(
    "--tls-cert",
    env="TLSRPT_TLS_CERT",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Certificate chain (PEM) for HTTPS and STARTTLS. Default: a self-signed one made "
    "under DATA_DIR/tls/ for local use.",
)
@_option(
    "--tls-key",
    env="TLSRPT_TLS_KEY",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Private key (PEM) of --tls-cert.",
)
@_option(
    "--domain",
    "domains",
    env="TLSRPT_DOMAIN",
    multiple=True,
    help="Policy domain to accept reports for (repeatable; subdomains included). "
    "Default: any (logged as a warning).",
)
@_option(
    "--mailbox",
    "mailboxes",
    env="TLSRPT_MAILBOX",
    multiple=True,
    help="Recipient address SMTP accepts (repeatable). Default: any address.",
)
@_option(
    "--https-path",
    env="TLSRPT_HTTPS_PATH",
    default="/tlsrpt",
    show_default=True,
    help="URL path reports are POSTed to.",
)
@_option(
    "--require-dkim",
    env="TLSRPT_REQUIRE_DKIM",
    is_flag=True,
    help="Refuse report emails without a passing, aligned DKIM signature (550 5.7.20). "
    "Default: store them, flagged with their DKIM result.",
)
@_option(
    "--dkim/--no-dkim",
    env="TLSRPT_DKIM",
    default=True,
    show_default=True,
    help="Verify DKIM signatures of report emails (needs DNS).",
)
@_option(
    "--nameserver",
    "nameservers",
    env="TLSRPT_NAMESERVER",
    multiple=True,
    help="DNS server for DKIM key lookups (repeatable; default: the system's).",
)
@_option("--dns-port", env="TLSRPT_DNS_PORT", type=int, default=53, hidden=True)
@_option(
    "--max-message-mb",
    env="TLSRPT_MAX_MESSAGE_MB",
    type=click.IntRange(1),
    default=10,
    show_default=True,
    help="Largest SMTP message (advertised as SIZE) and HTTPS body.",
)
@_option(
    "--max-decompressed-mb",
    env="TLSRPT_MAX_DECOMPRESSED_MB",
    type=click.IntRange(1),
    default=50,
    show_default=True,
    help="Refuse gzip data that inflates past this size.",
)
@_option(
    "--quarantine-days",
    env="TLSRPT_QUARANTINE_DAYS",
    type=click.FloatRange(0, min_open=True),
    default=30.0,
    show_default=True,
    help="Delete refused inputs from the quarantine after this many days.",
)
@_option(
    "--idle-timeout",
    env="TLSRPT_IDLE_TIMEOUT",
    type=click.FloatRange(0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds an SMTP client may stay silent before it is disconnected.",
)
@_option(
    "--max-session",
    env="TLSRPT_MAX_SESSION",
    type=click.FloatRange(0, min_open=True),
    default=600.0,
    show_default=True,
    help="Seconds an SMTP session may last in all.",
)
@_option(
    "--upload-timeout",
    env="TLSRPT_UPLOAD_TIMEOUT",
    type=click.FloatRange(0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds an HTTPS upload may take (408 after that).",
)
@_option(
    "--max-connections",
    env="TLSRPT_MAX_CONNECTIONS",
    type=click.IntRange(1),
    default=200,
    show_default=True,
    help="Connections each listener serves at once; more get SMTP 421 or HTTP 503 "
    "(each may hold one --max-message-mb in memory).",
)
@_option(
    "--hostname",
    env="TLSRPT_HOSTNAME",
    help="Name for the SMTP greeting and the logged URLs. Default: this host's FQDN.",
)
@user_errors(*COMMON_ERRORS, DataDirBusy, ConfigError, ListenError, IntakeFailed)
def serve_command(
    data_dir: Path,
    smtp_listen: str,
    https_listen: str,
    tls_cert: Path | None,
    tls_key: Path | None,
    domains: tuple[str, ...],
    mailboxes: tuple[str, ...],
    https_path: str,
    require_dkim: bool,
    dkim: bool,
    nameservers: tuple[str, ...],
    dns_port: int,
    max_message_mb: int,
    max_decompressed_mb: int,
    quarantine_days: float,
    idle_timeout: float,
    max_session: float,
    upload_timeout: float,
    max_connections: int,
    hostname: str | None,
) -> None:
    """Run the collector: receive reports by SMTP (mailto: rua) and HTTPS (https: rua),
    spool them durably, acknowledge, and store them in the database.

    Logs where to send reports and the _smtp._tls TXT record to publish. While it runs,
    `tlsrpt summary`, the analysis commands and notebooks read the database as usual;
    `tlsrpt import` refuses (deliver to the collector instead). SIGTERM or SIGINT stops
    it gracefully: no new connections, deliveries in progress finish, queued reports
    are stored.
    """
    from tlsrpt.service import serve

    config = ServeConfig(
        data_dir=data_dir,
        smtp_listen=parse_listen(smtp_listen),
        https_listen=parse_listen(https_listen),
        tls_cert=tls_cert,
        tls_key=tls_key,
        domains=frozenset(d.lower().rstrip(".") for d in domains),
        mailboxes=frozenset(m.lower() for m in mailboxes),
        https_path=https_path,
        require_dkim=require_dkim,
        dkim=dkim,
        nameservers=nameservers,
        dns_port=dns_port,
        max_message=max_message_mb * MB,
        max_decompressed=max_decompressed_mb * MB,
        quarantine_days=quarantine_days,
        idle_timeout=idle_timeout,
        max_session=max_session,
        upload_timeout=upload_timeout,
        max_connections=max_connections,
        hostname=hostname,
    )
    serve(config)


_KNOWN.update(p.name for p in serve_command.params if p.name)
