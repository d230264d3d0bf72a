"""Whole pages from plugin routes: :class:`Page` inside Orbit's layout, :class:`PublicPage` alone.

Both are Litestar template responses, so a handler returns one as it would any
response (``-> Page``), with a status code and headers when it needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from litestar.response import Template
from markupsafe import Markup

if TYPE_CHECKING:
    from litestar import Request

PUBLIC_HEADERS = {
    # Tokens travel in public URLs: never leak them to other sites, caches or search engines.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    # A customer accepting a quote must not be clicking inside another site's frame.
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


class _PluginHtml(Template):
    """A plugin's ``html`` under ``title`` in one of Orbit's page templates."""

    page_template: ClassVar[str]
    page_headers: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        title: str,
        html: str,
        *,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        """A page titled ``title`` whose content is ``html``."""
        super().__init__(
            self.page_template,
            context={"title": title, "html": Markup(html)},  # noqa: S704 - trusted as plugin code
            status_code=status_code,
            headers={**self.page_headers, **(headers or {})},
            media_type="text/html",
        )
        self.title = title
        self.html = html


class Page(_PluginHtml):
    """A plugin page rendered inside Orbit's layout (navigation, the user, htmx's CSRF header).

    ``html`` is inserted as it is: escape anything that came from users. Plain
    forms carry ``ctx.csrf_field()``; htmx requests send the CSRF header already.
    """

    page_template = "plugins/page.html"

    def create_template_context(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """The layout's context: who is signed in and in which workspace."""
        from orbit.platform.auth.middleware import PRINCIPAL_KEY  # noqa: PLC0415 - avoids a cycle
        from orbit.tenants.context import ANONYMOUS  # noqa: PLC0415

        principal = request.state.get(PRINCIPAL_KEY, ANONYMOUS)
        return {
            **super().create_template_context(request),
            "principal": principal,
            "tenant": principal.tenant,
        }


class PublicPage(_PluginHtml):
    """A standalone page for a public route: Orbit's styles, no navigation, no user data.

    Sent with ``Referrer-Policy: no-referrer``, ``Cache-Control: no-store`` and
    ``X-Robots-Tag: noindex`` (public URLs carry tokens), and never in a frame.
    """

    page_template = "plugins/public_page.html"
    page_headers = PUBLIC_HEADERS
