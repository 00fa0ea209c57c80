"""Error bodies: every failure of a REST route becomes JSON, never a stack trace.

Why here, in one place: the route class (:mod:`voicebox.api.guards`) catches everything a route
raises and hands it to :func:`error_response`, so each status has one body wherever it comes
from. A :class:`~voicebox.errors.VoiceboxError` keeps its ``status_code`` and message, a
validation failure becomes one readable 422 sentence plus the failing fields (never the
submitted values), and anything unexpected is logged and answered with a 500 that says only
"Internal error; see the server log.", so no server path or secret reaches a client.

Two shapes: ``{"detail": message}`` on voicebox's own routes, and under ``/v1/`` OpenAI's
``{"error": {"message", "type", "param", "code"}}``, because OpenAI's SDKs read the message from
there and otherwise show only "Error code: 422".

Over a limit (:class:`~voicebox.errors.TooManyRequests`: the request rate, or a quota) the answer
is 429 with ``Retry-After`` in seconds when waiting helps, and under ``/v1/`` OpenAI's codes for it
(``rate_limit_exceeded``, or ``insufficient_quota`` for a quota), which its SDKs know.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from ..errors import QuotaExceeded, TooManyRequests, VoiceboxError

log = logging.getLogger(__name__)

INTERNAL_ERROR = "Internal error; see the server log."
#: Error statuses -> OpenAI's short ``code`` in ``/v1/`` error bodies.
OPENAI_ERROR_CODES = {
    400: "bad_request",
    401: "invalid_api_key",
    404: "not_found",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_value",
    429: "rate_limit_exceeded",
    500: "internal_error",
    503: "model_unavailable",
}


def is_openai_path(path: str) -> bool:
    """Whether ``path`` is an OpenAI-compatible route, whose errors take OpenAI's shape."""
    return path == "/v1" or path.startswith("/v1/")


def error_json(
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    path: str = "",
    param: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    code: str | None = None,
    kind: str | None = None,
) -> JSONResponse:
    """The error body for a request to ``path``: ``{"detail": ...}`` (plus ``errors`` for
    validation), or under ``/v1/`` OpenAI's ``{"error": {message, type, param, code}}`` (``code``
    and ``kind`` replace the status's usual ones)."""
    if is_openai_path(path):
        kind = kind or ("server_error" if status >= 500 else "invalid_request_error")
        code = code or OPENAI_ERROR_CODES.get(status)
        error = {"message": detail, "type": kind, "param": param, "code": code}
        return JSONResponse({"error": error}, status_code=status, headers=headers)
    body: dict[str, Any] = {"detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def validation_response(exc: RequestValidationError, path: str = "") -> JSONResponse:
    """422 with one readable sentence plus the failing fields (never the submitted values)."""
    errors = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        where = ".".join(loc[1:] if len(loc) > 1 and loc[0] == "body" else loc) or "request"
        msg, kind = str(error.get("msg", "invalid")), str(error.get("type", ""))
        errors.append({"loc": loc, "field": where, "msg": msg, "type": kind})
    message = "; ".join(f"{e['field']}: {e['msg']}" for e in errors) or "The request is not valid."
    # OpenAI's ``param`` names a field; unparsable JSON (located by character offset) has none
    fields = [e["field"] for e in errors if len(e["loc"]) > 1 and e["type"] != "json_invalid"]
    return error_json(
        422, f"Invalid request: {message}", path=path, param=fields[0] if fields else None, errors=errors
    )


def limit_response(exc: TooManyRequests, path: str = "") -> JSONResponse:
    """429 with ``Retry-After`` (when waiting helps); under ``/v1/`` OpenAI's types and codes
    (``insufficient_quota`` for a quota, ``requests``/``rate_limit_exceeded`` for the rate)."""
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    quota = isinstance(exc, QuotaExceeded)
    return error_json(
        exc.status_code, exc.message, headers, path=path,
        code="insufficient_quota" if quota else "rate_limit_exceeded",
        kind="insufficient_quota" if quota else "requests",
    )


def error_response(exc: Exception, request: Request) -> Response:
    """Map any exception from a route to a JSON response; unexpected ones are logged, not shown."""
    path = request.url.path
    if isinstance(exc, VoiceboxError):
        log.info("%s %s -> %s: %s", request.method, path, exc.status_code, exc.message)
        if isinstance(exc, TooManyRequests):
            return limit_response(exc, path)
        return error_json(exc.status_code, exc.message, path=path)
    if isinstance(exc, RequestValidationError):
        return validation_response(exc, path)
    if isinstance(exc, HTTPException):
        return error_json(exc.status_code, str(exc.detail), dict(exc.headers or {}) or None, path=path)
    log.exception("internal error in %s %s", request.method, path)
    return error_json(500, INTERNAL_ERROR, path=path)
