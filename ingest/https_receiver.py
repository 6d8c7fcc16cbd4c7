"""The HTTPS edge (a Starlette app served by uvicorn): `POST {path}` with a report.

Thin: checks the method, media type and size while streaming the body (never buffering
past the cap), hands the body to `Reception` and turns the receipt into a status with a
small JSON body. `GET /healthz` answers 200 once the collector is ready.

`POST {path}`, the hot path, is plain ASGI in front of the Starlette app (which
serves the rest: health, 404, 405): a report costs no routing, middleware or request
and response objects.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ingest.decode import is_gzip
from ingest.errors import ForeignDomain, InternalError, InvalidReport, TooLarge
from ingest.model import Channel
from ingest.parse_mail import looks_like_json
from ingest.reception import Reception

REPORT_TYPES = frozenset({"application/tlsrpt+gzip", "application/tlsrpt+json"})


class _Refused(Exception):
    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason


class _ClientGone(Exception):
    pass


def _error(status: int, code: str, reason: str) -> JSONResponse:
    return JSONResponse({"error": code, "reason": reason}, status_code=status)


def _status_for(error: InvalidReport) -> int:
    if isinstance(error, InternalError):
        return 500
    if isinstance(error, TooLarge):
        return 413
    if isinstance(error, ForeignDomain):
        return 403
    return 400


async def _answer(send: Send, status: int, content: dict[str, str]) -> None:
    await _send_json(send, status, json.dumps(content, separators=(",", ":")).encode())


def _receipt_body(status: bytes, spool_id: str) -> bytes:
    # {"status": ..., "id": ...} without the JSON encoder: the id is hex digits and a dash
    return b'{"status":"' + status + b'","id":"' + spool_id.encode() + b'"}'


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(
    reception: Reception,
    *,
    path: str = "/tlsrpt",
    max_body: int = 10 * 1024 * 1024,
    upload_timeout: float = 60.0,
    ready: Callable[[], bool] = lambda: True,
) -> ASGIApp:
    too_large = f"body larger than {max_body} bytes"

    async def read_body(scope: Scope, receive: Receive) -> bytes:
        declared = _header(scope, b"content-length")
        if declared and declared.isdigit() and int(declared) > max_body:
            raise _Refused(413, "too_large", too_large)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(upload_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _ClientGone
                    chunk = message.get("body", b"")
                    if chunk:
                        size += len(chunk)
                        if size > max_body:
                            raise _Refused(413, "too_large", too_large)
                        chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            raise _Refused(
                408, "timeout", f"upload not complete in {upload_timeout:.0f} s"
            ) from None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def unsupported(media_type: str) -> _Refused:
        return _Refused(
            415,
            "unsupported_media_type",
            f"media type {media_type or 'missing'}; "
            "send application/tlsrpt+gzip or application/tlsrpt+json",
        )

    async def receive_report(scope: Scope, receive: Receive, send: Send) -> None:
        media_type = _header(scope, b"content-type").split(";")[0].strip().lower()
        try:
            if media_type and media_type not in REPORT_TYPES:
                raise unsupported(media_type)
            body = await read_body(scope, receive)
            if not media_type and not (is_gzip(body) or looks_like_json(body)):
                raise unsupported(media_type)  # no label, and the body is neither
        except _Refused as exc:
            await _answer(send, exc.status, {"error": exc.code, "reason": exc.reason})
            return
        except _ClientGone:
            return  # nothing was received whole, so nothing was spooled
        client = scope.get("client")
        source = f"https:{client[0]}" if client else "https"
        receipt = await reception.receive(body, Channel.HTTPS, source)
        if receipt.refusal is not None:
            error = receipt.refusal
            await _answer(send, _status_for(error), {"error": error.code, "reason": str(error)})
        elif receipt.duplicate:
            await _send_json(send, 200, _receipt_body(b"duplicate", receipt.spool_id))
        else:
            await _send_json(send, 201, _receipt_body(b"accepted", receipt.spool_id))

    async def healthz(request: Request) -> Response:
        if ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "starting"}, status_code=503)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        response = _error(exc.status_code, code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    rest = Starlette(
        routes=[
            Route(path, _AsgiEndpoint(receive_report), methods=["POST"]),  # for the 405s
            Route("/healthz", healthz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == path:
            await receive_report(scope, receive, send)
        else:
            await rest(scope, receive, send)

    return app


class _AsgiEndpoint:
    """A plain ASGI function as a Starlette route endpoint (a class instance, so
    Starlette calls it as an ASGI app rather than as a request handler)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""
