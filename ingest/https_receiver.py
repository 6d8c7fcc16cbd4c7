"""The HTTPS edge (a Starlette app served by uvicorn): `POST {path}` with a report.

Thin: checks the method, media type and size while streaming the body (never buffering
past the cap), hands the body to `Reception` and turns the receipt into a status with a
small JSON body. `GET /healthz` answers 200 once the collector is ready.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ingest.decode import is_gzip
from ingest.errors import ForeignDomain, InvalidReport, TooLarge
from ingest.model import Channel
from ingest.parse_mail import looks_like_json
from ingest.reception import InternalError, Reception

REPORT_TYPES = frozenset({"application/tlsrpt+gzip", "application/tlsrpt+json"})


class _Refused(Exception):
    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason


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


def create_app(
    reception: Reception,
    *,
    path: str = "/tlsrpt",
    max_body: int = 10 * 1024 * 1024,
    upload_timeout: float = 60.0,
    ready: Callable[[], bool] = lambda: True,
) -> Starlette:
    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body:
            raise _Refused(413, "too_large", f"body larger than {max_body} bytes")
        body = bytearray()
        try:
            async with asyncio.timeout(upload_timeout):
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > max_body:
                        raise _Refused(413, "too_large", f"body larger than {max_body} bytes")
        except TimeoutError:
            raise _Refused(
                408, "timeout", f"upload not complete in {upload_timeout:.0f} s"
            ) from None
        return bytes(body)

    def unsupported(media_type: str) -> _Refused:
        return _Refused(
            415,
            "unsupported_media_type",
            f"media type {media_type or 'missing'}; "
            "send application/tlsrpt+gzip or application/tlsrpt+json",
        )

    async def receive_report(request: Request) -> Response:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if media_type and media_type not in REPORT_TYPES:
                raise unsupported(media_type)
            body = await read_body(request)
            if not media_type and not (is_gzip(body) or looks_like_json(body)):
                raise unsupported(media_type)  # no label, and the body is neither
        except _Refused as exc:
            return _error(exc.status, exc.code, exc.reason)
        client = request.client
        source = f"https:{client.host}" if client else "https"
        receipt = await reception.receive(body, Channel.HTTPS, source)
        if receipt.refusal is not None:
            error = receipt.refusal
            return _error(_status_for(error), error.code, str(error))
        if receipt.duplicate:
            return JSONResponse({"status": "duplicate", "id": receipt.spool_id}, status_code=200)
        return JSONResponse({"status": "accepted", "id": receipt.spool_id}, status_code=201)

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

    return Starlette(
        routes=[
            Route(path, receive_report, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )
