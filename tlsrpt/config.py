"""Settings of `tlsrpt serve`: command-line options, a TOML file and environment variables.

Precedence: command line, then environment (`TLSRPT_*`), then the TOML file given with
`--config`, then the built-in defaults. TOML keys are the option names without the
leading dashes (`smtp-listen` or `smtp_listen`); repeatable options take a list.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.limits import MB


class ConfigError(Exception):
    """A setting that cannot work."""


class ListenError(Exception):
    """A listener could not open its address."""


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(value: str) -> Listen:
    """`HOST:PORT`, `[IPV6]:PORT` or `:PORT` (all addresses)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"listen address {value!r}: expected HOST:PORT")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 (the operator asked for all addresses)
    return Listen(host, int(port))


@dataclass(frozen=True, slots=True)
class ServeConfig:
    data_dir: Path = Path("data")
    smtp_listen: Listen = Listen("127.0.0.1", 2525)
    https_listen: Listen = Listen("127.0.0.1", 8443)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    domains: frozenset[str] = frozenset()
    """Policy domains reports are accepted for; empty: any."""
    mailboxes: frozenset[str] = frozenset()
    """Recipient addresses SMTP accepts; empty: any."""
    https_path: str = "/tlsrpt"
    require_dkim: bool = False
    dkim: bool = True
    nameservers: tuple[str, ...] = ()
    dns_port: int = 53
    max_message: int = 10 * MB
    """Largest SMTP message and HTTPS body (compressed)."""
    max_decompressed: int = 50 * MB
    quarantine_days: float = 30.0
    idle_timeout: float = 60.0
    """Seconds an SMTP client may stay silent."""
    max_session: float = 600.0
    """Seconds an SMTP session may last in all."""
    upload_timeout: float = 60.0
    """Seconds an HTTPS upload may take."""
    max_connections: int = 200
    """Connections each listener serves at once (each may buffer one `max_message`)."""
    hostname: str | None = None
    """The name in the SMTP greeting and in the logged addresses (default: the FQDN)."""

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("give both --tls-cert and --tls-key, or neither")
        if not self.https_path.startswith("/"):
            raise ConfigError(f"--https-path {self.https_path!r} must start with /")
        if self.require_dkim and not self.dkim:
            raise ConfigError("--require-dkim needs DKIM verification (drop --no-dkim)")
        if self.https_path == "/healthz":
            raise ConfigError("--https-path cannot be /healthz")


def load_toml(path: Path, known: set[str]) -> dict[str, Any]:
    """Settings from a TOML file, keyed by option parameter name (`smtp_listen`)."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    table = data.get("serve", data)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [serve] must be a table")
    settings: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        name = {"domain": "domains", "mailbox": "mailboxes"}.get(name, name)
        if name not in known:
            raise ConfigError(f"{path}: unknown setting {key!r}")
        settings[name] = value
    return settings
