"""`tlsrpt serve`: both listeners, the spool and the writer, in one event loop.

Start: take the collector lock, load the keys of the stored reports, check whatever an
earlier run left in the spool, open the SMTP listener (aiosmtpd) and the HTTPS listener
(uvicorn), then log where to send reports. Stop (SIGTERM/SIGINT): stop accepting,
finish the deliveries in progress, store what is queued, release the lock.
See docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from ingest.collector_lock import collector_lock, update_lock
from ingest.dkim_check import DkimChecker
from ingest.https_receiver import create_app
from ingest.intake import IntakeRules
from ingest.limits import Limits
from ingest.quarantine import Quarantine
from ingest.reception import IntakeFailed, Reception
from ingest.smtp_receiver import ReportHandler, smtp_factory
from tlsrpt.certificates import TlsFiles, local_certificate
from tlsrpt.config import ListenError, ServeConfig

log = logging.getLogger("tlsrpt.serve")

PURGE_EVERY = 3600.0
DRAIN_TIMEOUT = 30.0
"""Seconds the writer gets at shutdown; what is left waits in the spool."""


@dataclass(frozen=True, slots=True)
class Endpoints:
    smtp: tuple[str, int]
    https: tuple[str, int]
    https_url: str
    ca: Path | None


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handlers: the collector owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _tcp_listener(host: str, port: int) -> socket.socket:
    """A listening socket that asyncio recognises as TCP (protocol IPPROTO_TCP), so the
    connections it accepts get TCP_NODELAY: without it, a response written in two parts
    waits for the client's delayed ACK (40 ms) before its second part leaves."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except BaseException:
        sock.close()
        raise
    return sock


class Collector:
    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.ready = False
        self.endpoints: Endpoints | None = None

    async def run(
        self, stop: asyncio.Event, on_ready: Callable[[Endpoints], None] | None = None
    ) -> None:
        config = self.config
        with collector_lock(config.data_dir, "serve") as lock_info:
            await self._run(stop, on_ready, lock_info)

    async def _run(
        self,
        stop: asyncio.Event,
        on_ready: Callable[[Endpoints], None] | None,
        lock_info: dict[str, object],
    ) -> None:
        config = self.config
        data_dir = config.data_dir
        loop = asyncio.get_running_loop()
        hostname = config.hostname or socket.getfqdn()
        tls = self._tls_files(hostname)

        rules = IntakeRules(
            limits=Limits(
                max_compressed=config.max_message, max_decompressed=config.max_decompressed
            ),
            domains=config.domains,
            require_dkim=config.require_dkim,
            dkim=DkimChecker(nameservers=config.nameservers, port=config.dns_port)
            if config.dkim
            else None,
        )
        reception = Reception(data_dir, rules)
        await reception.start(DRAIN_TIMEOUT)
        accepted, refused = reception.recovered
        if accepted or refused:
            log.info(
                "spool from an earlier run: %d report(s) to store, %d refused", accepted, refused
            )

        handler = ReportHandler(reception, config.mailboxes)
        try:
            smtp_server = await loop.create_server(
                smtp_factory(
                    handler,
                    hostname=hostname,
                    data_size_limit=config.max_message,
                    tls_context=tls.server_context(),
                    idle_timeout=config.idle_timeout,
                    max_session=config.max_session,
                    max_sessions=config.max_connections,
                ),
                config.smtp_listen.host,
                config.smtp_listen.port,
            )
        except OSError as exc:
            await reception.close(DRAIN_TIMEOUT)
            raise ListenError(
                f"SMTP cannot listen on {config.smtp_listen}: {exc.strerror}"
            ) from exc
        try:
            https_socket = _tcp_listener(config.https_listen.host, config.https_listen.port)
        except OSError as exc:
            smtp_server.close()
            await reception.close(DRAIN_TIMEOUT)
            raise ListenError(
                f"HTTPS cannot listen on {config.https_listen}: {exc.strerror}"
            ) from exc
        app = create_app(
            reception,
            path=config.https_path,
            max_body=config.max_message,
            upload_timeout=config.upload_timeout,
            ready=lambda: self.ready,
        )
        web = _Uvicorn(
            uvicorn.Config(
                app,
                ssl_certfile=str(tls.cert),
                ssl_keyfile=str(tls.key),
                log_config=None,
                log_level="warning",
                access_log=False,
                lifespan="off",
                server_header=False,
                timeout_keep_alive=5,
                timeout_graceful_shutdown=10,
                # uvicorn counts the connection asking too: this serves max_connections
                limit_concurrency=config.max_connections + 1,
            )
        )
        web_task = asyncio.create_task(web.serve(sockets=[https_socket]))
        while not web.started and not web_task.done():
            await asyncio.sleep(0.01)
        if web_task.done():
            smtp_server.close()
            await web_task  # raises what stopped it
            raise RuntimeError("the HTTPS listener did not start")

        smtp_addr = smtp_server.sockets[0].getsockname()[:2]
        https_addr = https_socket.getsockname()[:2]
        wildcard = config.https_listen.host in ("0.0.0.0", "::")  # noqa: S104
        url_host = hostname if wildcard else https_addr[0]
        url_host = f"[{url_host}]" if ":" in url_host else url_host
        endpoints = Endpoints(
            smtp=(smtp_addr[0], smtp_addr[1]),
            https=(https_addr[0], https_addr[1]),
            https_url=f"https://{url_host}:{https_addr[1]}{config.https_path}",
            ca=tls.ca,
        )
        self.endpoints = endpoints
        lock_info.update(
            smtp=f"{smtp_addr[0]}:{smtp_addr[1]}",
            https=endpoints.https_url,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        update_lock(data_dir, lock_info)
        # What exists now (modules, the known-report index, the libraries' bindings) lives
        # as long as the process: spare it the full collections of the cyclic GC, which
        # otherwise scan it all again, tens of milliseconds at a time on the event loop.
        gc.freeze()
        self.ready = True
        self._log_banner(endpoints, tls)
        if on_ready is not None:
            on_ready(endpoints)

        purge = asyncio.create_task(self._purge_quarantine())
        stopping = asyncio.create_task(stop.wait())
        failing = asyncio.create_task(reception.failed.wait())
        try:
            await asyncio.wait({stopping, failing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            failing.cancel()
            log.info("shutting down: no new connections; finishing deliveries in progress")
            self.ready = False
            purge.cancel()
            smtp_server.close()
            handler.closing = True  # new SMTP transactions get 421
            web.should_exit = True
            await web_task  # uvicorn finishes the requests in flight
            await reception.drain()
            for session in list(handler.sessions):
                session.close()
            await smtp_server.wait_closed()
            await reception.drain()
            await reception.close(DRAIN_TIMEOUT)
            if reception.left:
                log.warning(
                    "%d report(s) stay in the spool and are stored at the next start",
                    reception.left,
                )
            stats = reception.stats
            if stats is not None:
                log.info(
                    "stopped: %d stored, %d duplicates, %d conflicts this run",
                    stats["stored"],
                    stats["duplicates"],
                    stats["conflicts"],
                )
        if reception.failed.is_set():
            raise IntakeFailed("the intake process ended unexpectedly (see the log above)")

    def _tls_files(self, hostname: str) -> TlsFiles:
        config = self.config
        if config.tls_cert is not None and config.tls_key is not None:
            return TlsFiles(config.tls_cert, config.tls_key, None)
        return local_certificate(config.data_dir, hostname)

    async def _purge_quarantine(self) -> None:
        quarantine = Quarantine(self.config.data_dir)
        while True:
            removed = await asyncio.to_thread(quarantine.purge, self.config.quarantine_days)
            if removed:
                log.info(
                    "quarantine: removed %d entries older than %g days",
                    removed,
                    self.config.quarantine_days,
                )
            await asyncio.sleep(PURGE_EVERY)

    def _log_banner(self, endpoints: Endpoints, tls: TlsFiles) -> None:
        config = self.config
        smtp_host, smtp_port = endpoints.smtp
        log.info(
            "SMTP listener on %s:%d (STARTTLS offered, not required), mailboxes: %s",
            smtp_host,
            smtp_port,
            ", ".join(sorted(config.mailboxes)) or "any address",
        )
        log.info("HTTPS listener: POST %s", endpoints.https_url)
        if tls.ca is not None:
            log.info(
                "TLS: using a self-signed certificate made for local use (%s, CA %s); "
                "give --tls-cert and --tls-key for a real one",
                tls.cert,
                tls.ca,
            )
        domains = sorted(config.domains)
        if not domains:
            log.warning(
                "no --domain given: reports about any domain are accepted; "
                "name your policy domains to refuse the rest"
            )
        for domain in domains or ["example.com"]:
            mailbox = min(config.mailboxes) if config.mailboxes else f"tlsrpt@{domain}"
            log.info(
                'publish: _smtp._tls.%s. IN TXT "v=TLSRPTv1; rua=mailto:%s,%s"',
                domain,
                mailbox,
                endpoints.https_url,
            )
        if smtp_port != 25:
            log.info(
                "senders deliver mail to your MX on port 25 and HTTPS to port 443: "
                "route those to these listeners"
            )
        log.info("ready")


def serve(config: ServeConfig) -> None:
    """Run the collector until SIGTERM or SIGINT."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Collector(config).run(stop)

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every connection
    # The event loop shares the interpreter with the spool, writer and DKIM threads: hand
    # the GIL over more often than every 5 ms so the loop answers promptly.
    sys.setswitchinterval(0.001)
    asyncio.run(main())
