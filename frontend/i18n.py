"""gettext for templates and Python: English is the source catalog.

Catalogs live in ``frontend/locale/<lang>/LC_MESSAGES/orbit.mo`` (``make i18n``
extracts ``orbit.pot``); until a language ships, English strings pass through.
"""

from __future__ import annotations

import gettext
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from babel.numbers import format_currency
from jinja2 import pass_context
from markupsafe import Markup

from orbit.plugins.ui import fragment_html

if TYPE_CHECKING:
    from datetime import datetime
    from decimal import Decimal

    from jinja2 import Environment
    from jinja2.runtime import Context

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "orbit"


def translations(language: str = "en") -> gettext.NullTranslations:
    """The catalog for ``language`` (English: the source strings)."""
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[language], fallback=True)


def _(message: str) -> str:
    """Mark and translate a user-facing string (English until catalogs ship)."""
    return translations().gettext(message)


def install(env: Environment) -> None:
    """Enable ``{% trans %}`` and ``_()`` in the Jinja2 environment."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_translations(translations(), newstyle=True)  # type: ignore[attr-defined]
    env.globals["slot"] = slot
    env.filters["money"] = money
    env.filters["local"] = local_time


def money(amount: Decimal, currency: str, locale: str = "en") -> str:
    """An amount as people read it in ``locale``, with the currency's own minor unit."""
    return format_currency(amount, currency, locale=locale)


def local_time(moment: datetime, time_zone: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``moment`` as the clock on the wall in ``time_zone`` shows it."""
    return moment.astimezone(ZoneInfo(time_zone)).strftime(fmt)


@pass_context
def slot(context: Context, name: str) -> Markup:
    """What plugins put into the slot ``name`` (``contact.sidebar``, ``dashboard``, …).

    Page controllers pass ``plugin_slots``: slot name → fragments (see orbit.plugins.ui).
    """
    fragments = (context.get("plugin_slots") or {}).get(name, ())
    return Markup("".join(fragment_html(f) for f in fragments))  # noqa: S704 - built by fragment_html
