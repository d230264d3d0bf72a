"""Errors as responses: JSON naming the fields for the API, a page for browsers."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from markupsafe import escape

from orbit.platform.auth.middleware import PRINCIPAL_KEY
from orbit.platform.errors import (
    InvalidInputError,
    NotAuthenticatedError,
    OrbitError,
    RateLimitedError,
)
from orbit.plugins.pages import PublicPage
from orbit.tenants.context import ANONYMOUS

if TYPE_CHECKING:
    from litestar.types import ExceptionHandlersMap

log = logging.getLogger(__name__)


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get(
        "accept", ""
    )


def _error_page(
    request: Request[Any, Any, Any],
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
) -> Template:
    if request.url.path.startswith("/p/"):  # a plugin's public page: no layout, no user
        return PublicPage(str(status), str(escape(message)), status_code=status, headers=headers)
    principal = request.state.get(PRINCIPAL_KEY, ANONYMOUS)
    return Template(
        "error.html",
        context={
            "status": status,
            "message": message,
            "principal": principal,
            "tenant": principal.tenant,
        },
        status_code=status,
        headers=headers,
    )


def _body(status: int, detail: str, fields: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"status_code": status, "detail": detail}
    if fields:
        body["extra"] = [{"key": key, "message": message} for key, message in fields.items()]
    return body


def orbit_error(request: Request[Any, Any, Any], exc: OrbitError) -> Response[Any]:
    """An :class:`OrbitError` as a 4xx response."""
    headers = exc.headers if isinstance(exc, RateLimitedError) else {}
    if _wants_json(request):
        return Response(
            _body(exc.status_code, exc.message, exc.fields),
            status_code=exc.status_code,
            media_type=MediaType.JSON,
            headers=headers,
        )
    if isinstance(exc, NotAuthenticatedError) and request.method == "GET":
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(f"/login?{urlencode({'next': back})}")
    return _error_page(request, exc.status_code, exc.message, headers)


_AT_FIELD = re.compile(r"- at `\$\.([A-Za-z_][\w]*)")
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]+)`")


def _field_of(item: dict[str, Any]) -> str:
    """The field a Litestar/msgspec validation message is about, by name."""
    message = str(item.get("message", ""))
    match = _AT_FIELD.search(message) or _UNKNOWN_FIELD.search(message)
    if match:
        return match.group(1)
    return str(item.get("key") or item.get("source") or "body")


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's own errors (validation, 404, 405) in the same shape."""
    fields: dict[str, str] = {}
    detail = exc.detail
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        for item in exc.extra:
            if isinstance(item, dict):
                fields[_field_of(item)] = str(item.get("message"))
        if fields:
            detail = "; ".join(f"{key}: {message}" for key, message in fields.items())
    if _wants_json(request):
        return Response(
            _body(exc.status_code, detail, fields),
            status_code=exc.status_code,
            media_type=MediaType.JSON,
            headers=exc.headers,
        )
    return _error_page(request, exc.status_code, detail)


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A bug: logged with its traceback, answered with a plain 500."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    message = "internal error; it has been logged"
    if _wants_json(request):
        return Response(
            _body(HTTP_500_INTERNAL_SERVER_ERROR, message, {}),
            status_code=HTTP_500_INTERNAL_SERVER_ERROR,
            media_type=MediaType.JSON,
        )
    return _error_page(request, HTTP_500_INTERNAL_SERVER_ERROR, message)


def too_deep(request: Request[Any, Any, Any], _exc: RecursionError) -> Response[Any]:
    """A JSON body nested so deeply that decoding it recursed too far."""
    return orbit_error(request, InvalidInputError("the request body is nested too deeply"))


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    RecursionError: too_deep,
    OrbitError: orbit_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
