"""Block templates → responsive HTML (MJML), personalised in a Jinja2 sandbox.

A template is a subject, a preheader and a list of blocks::

    [{"type": "heading", "text": "Hello {{ contact.first_name }}"},
     {"type": "text", "text": "Our spring offer…"},
     {"type": "button", "text": "See it", "url": "https://example.com/spring"},
     {"type": "image", "src": "https://example.com/a.png", "alt": "Spring", "url": ""},
     {"type": "divider"}, {"type": "spacer"}]

:func:`compile_template` turns it once into MJML, compiles that to table HTML, inlines
the CSS (Gmail and Outlook drop ``<style>`` rules) and writes the text part from the
same blocks; both parts stay Jinja templates whose links, open pixel and unsubscribe
link are calls (``_link(0)``, ``_pixel()``, ``_unsubscribe()``) filled per message.
:func:`render` personalises it for one contact in a sandbox: a template cannot reach
Python objects beyond the values it is given.
"""

from __future__ import annotations

import html
import re
from collections import OrderedDict
from dataclasses import dataclass
from gettext import gettext as _
from typing import Any, Protocol
from urllib.parse import urlsplit

import css_inline
from jinja2 import TemplateSyntaxError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from mjml import mjml_to_html

from orbit.plugins.builtin.email_marketing.errors import Problems

BLOCK_TYPES = ("heading", "text", "button", "image", "divider", "spacer")
MAX_BLOCKS = 100
MAX_TEXT = 20_000
MAX_SUBJECT = 250
MAX_URL = 2000
GMAIL_CLIP_BYTES = 102 * 1024
"""Gmail cuts a message's HTML beyond this ("[Message clipped]"), hiding the footer."""
SIZE_LIMIT = 100 * 1024
"""What templates are held to: under Gmail's limit with room for long personal values."""

_JINJA = re.compile(r"({{.*?}}|{%.*?%})", re.DOTALL)
_HTML_ENV = ImmutableSandboxedEnvironment(autoescape=True, undefined=Undefined)
_TEXT_ENV = ImmutableSandboxedEnvironment(autoescape=False, undefined=Undefined)
_INLINER = css_inline.CSSInliner(keep_style_tags=True)


@dataclass(frozen=True, slots=True)
class Compiled:
    """A template ready to render: Jinja templates for subject, HTML and text, and its links."""

    subject: Any
    html: Any
    text: Any
    links: tuple[str, ...]
    """Targets of the tracked links, by index (``_link(i)``)."""


class Links(Protocol):
    """What fills a message's links: tracked URLs, the open pixel, the unsubscribe page."""

    def link(self, index: int) -> str:
        """The tracked URL of link ``index`` (``-1`` is the hidden honeypot link)."""
        ...

    def pixel(self) -> str:
        """The open-tracking image's URL."""
        ...

    def unsubscribe(self) -> str:
        """The unsubscribe page's URL."""
        ...


class PlainLinks:
    """Untracked links: previews in the app show the real targets."""

    def __init__(self, links: tuple[str, ...], unsubscribe_url: str = "#") -> None:
        self._links = links
        self._unsubscribe = unsubscribe_url

    def link(self, index: int) -> str:
        """The link's real target."""
        return self._links[index] if 0 <= index < len(self._links) else "#"

    def pixel(self) -> str:
        """A blank image."""
        return "data:image/gif;base64,R0lGODlhAQABAAAAACw="

    def unsubscribe(self) -> str:
        """Where unsubscribing would go."""
        return self._unsubscribe


def _escape_literal(source: str) -> str:
    """HTML-escape the text around Jinja expressions, keeping the expressions as written."""
    parts = _JINJA.split(source)
    return "".join(p if i % 2 else html.escape(p, quote=False) for i, p in enumerate(parts))


def _paragraphs(source: str) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", source) if p.strip()]
    return "".join(
        f'<p style="margin:0 0 12px 0">{_escape_literal(p).replace(chr(10), "<br>")}</p>'
        for p in paragraphs
    )


def _http_url(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > MAX_URL:
        return False
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


def check_blocks(raw: Any, problems: Problems, name: str = "blocks") -> list[dict[str, str]]:
    """The blocks, each checked; every problem goes into ``problems`` as ``blocks[i].field``."""
    if not isinstance(raw, list) or not raw:
        problems.add(name, "must be a non-empty list of blocks")
        return []
    if len(raw) > MAX_BLOCKS:
        problems.add(name, f"at most {MAX_BLOCKS} blocks")
        return []
    blocks = [_check_block(item, f"{name}[{index}]", problems) for index, item in enumerate(raw)]
    return [block for block in blocks if block is not None]


def _check_block(item: Any, where: str, problems: Problems) -> dict[str, str] | None:
    if not isinstance(item, dict) or item.get("type") not in BLOCK_TYPES:
        problems.add(f"{where}.type", f"must be one of {', '.join(BLOCK_TYPES)}")
        return None
    kind = item["type"]
    block = {"type": kind}
    for key in ("text", "url", "src", "alt"):
        value = item.get(key, "")
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            problems.add(f"{where}.{key}", f"must be text of at most {MAX_TEXT} characters")
            value = ""
        block[key] = value
    if kind in {"heading", "text", "button"} and not block["text"].strip():
        problems.add(f"{where}.text", "is required for a " + kind)
    if kind == "button" and not _http_url(block["url"]):
        problems.add(f"{where}.url", "must be an http(s) URL")
    if kind == "image" and not _http_url(block["src"]):
        problems.add(f"{where}.src", "must be an http(s) URL")
    if kind == "image" and block["url"] and not _http_url(block["url"]):
        problems.add(f"{where}.url", "must be an http(s) URL or empty")
    for key in ("text", "alt"):
        try:
            _TEXT_ENV.parse(block[key])
        except TemplateSyntaxError as exc:
            problems.add(f"{where}.{key}", f"template error: {exc.message}")
    return block


def _mjml(blocks: list[dict[str, str]], preheader: str, links: list[str]) -> str:
    def tracked(url: str) -> str:
        links.append(url)
        return "{{ _link(%d) }}" % (len(links) - 1)  # noqa: UP031 - Jinja braces

    parts: list[str] = []
    for block in blocks:
        kind = block["type"]
        if kind == "heading":
            parts.append(
                '<mj-text font-size="22px" font-weight="bold" line-height="1.3">'
                f"{_escape_literal(block['text'])}</mj-text>"
            )
        elif kind == "text":
            parts.append(
                '<mj-text font-size="15px" line-height="1.5">'
                f"{_paragraphs(block['text'])}</mj-text>"
            )
        elif kind == "button":
            parts.append(
                f'<mj-button href="{tracked(block["url"])}" background-color="#2563eb">'
                f"{_escape_literal(block['text'])}</mj-button>"
            )
        elif kind == "image":
            href = f' href="{tracked(block["url"])}"' if block["url"] else ""
            parts.append(
                f'<mj-image src="{html.escape(block["src"])}" '
                f'alt="{_escape_literal(block["alt"])}"{href} />'
            )
        elif kind == "divider":
            parts.append('<mj-divider border-width="1px" border-color="#e5e7eb" />')
        else:
            parts.append('<mj-spacer height="24px" />')
    footer = (
        '<mj-text font-size="12px" color="#6b7280" align="center">'
        '<a href="{{ _unsubscribe() }}" style="color:#6b7280">'
        + html.escape(_("Unsubscribe"))
        + "</a></mj-text>"
    )
    pre = f"<mj-preview>{_escape_literal(preheader)}</mj-preview>" if preheader else ""
    return (
        "<mjml><mj-head><mj-attributes>"
        '<mj-all font-family="Helvetica, Arial, sans-serif" />'
        '<mj-text color="#111827" />'
        f"</mj-attributes>{pre}</mj-head>"
        '<mj-body background-color="#f3f4f6"><mj-section background-color="#ffffff">'
        f"<mj-column>{''.join(parts)}</mj-column></mj-section>"
        f"<mj-section><mj-column>{footer}</mj-column></mj-section></mj-body></mjml>"
    )


# A link no person sees: a client that follows it is a scanner (its clicks are machine).
_HONEYPOT = (
    '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all" aria-hidden="true">'
    '<a href="{{ _link(-1) }}" tabindex="-1">&#8203;</a></div>'
)
_PIXEL = '<img src="{{ _pixel() }}" width="1" height="1" alt="" style="display:block;border:0">'


def _text_part(blocks: list[dict[str, str]], links: tuple[str, ...]) -> str:
    lines: list[str] = []
    index = 0
    for block in blocks:
        kind = block["type"]
        if kind in {"heading", "text"}:
            lines += [block["text"].strip(), ""]
        elif kind == "button":
            lines += [f"{block['text'].strip()}: {{{{ _link({index}) }}}}", ""]
            index += 1
        elif kind == "image":
            if block["url"]:
                lines += [f"{block['alt'].strip() or block['url']}: {{{{ _link({index}) }}}}", ""]
                index += 1
            elif block["alt"].strip():
                lines += [f"[{block['alt'].strip()}]", ""]
        elif kind == "divider":
            lines += ["—" * 20, ""]
    assert index == len(links)  # noqa: S101 - the text part tracks the same links in order
    lines += ["", _("Unsubscribe") + ": {{ _unsubscribe() }}"]
    return "\n".join(lines)


def compile_template(subject: str, preheader: str, blocks: list[dict[str, str]]) -> Compiled:
    """Compile checked blocks once: HTML with inlined CSS, text part, subject, links."""
    links: list[str] = []
    result = mjml_to_html(_mjml(blocks, preheader, links))
    page = _INLINER.inline(result.html)
    page = page.replace("</body>", _HONEYPOT + _PIXEL + "</body>", 1)
    frozen = tuple(links)
    return Compiled(
        subject=_TEXT_ENV.from_string(subject),
        html=_HTML_ENV.from_string(page),
        text=_TEXT_ENV.from_string(_text_part(blocks, frozen)),
        links=frozen,
    )


_CACHE: OrderedDict[tuple[Any, ...], Compiled] = OrderedDict()
_CACHE_SIZE = 64


def compiled(key: tuple[Any, ...], subject: str, preheader: str, blocks: Any) -> Compiled:
    """:func:`compile_template` cached by ``key`` (the template's id and version)."""
    found = _CACHE.get(key)
    if found is not None:
        _CACHE.move_to_end(key)
        return found
    problems = Problems()
    checked = check_blocks(blocks, problems)
    problems.raise_any()
    made = compile_template(subject, preheader, checked)
    _CACHE[key] = made
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return made


@dataclass(frozen=True, slots=True)
class Rendered:
    """One personalised message's parts."""

    subject: str
    html: str
    text: str


def contact_values(contact: Any) -> dict[str, Any]:
    """What a template may use of a contact (``contact.first_name``, ``contact.custom.x``)."""
    return {
        "first_name": contact.first_name or "",
        "last_name": contact.last_name or "",
        "name": contact.name,
        "email": contact.email or "",
        "phone": getattr(contact, "phone", None) or "",
        "tags": list(getattr(contact, "tags", ()) or ()),
        "custom": dict(getattr(contact, "custom", {}) or {}),
    }


def render(template: Compiled, values: dict[str, Any], links: Links) -> Rendered:
    """The template personalised with ``values`` (``contact``…); ``links`` fills its links."""
    helpers = {"_link": links.link, "_pixel": links.pixel, "_unsubscribe": links.unsubscribe}
    context = {**values, **helpers}
    subject = " ".join(template.subject.render(context).split())
    return Rendered(
        subject=subject[:MAX_SUBJECT],
        html=template.html.render(context),
        text=template.text.render(context),
    )


def check_template(
    subject: Any, preheader: Any, blocks: Any, sample: dict[str, Any] | None = None
) -> tuple[str, str, list[dict[str, str]]]:
    """Subject, preheader and blocks checked, compiled and rendered once (size included)."""
    problems = Problems()
    if not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_SUBJECT:
        problems.add("subject", f"is required, at most {MAX_SUBJECT} characters")
        subject = ""
    else:
        try:
            _TEXT_ENV.parse(subject)
        except TemplateSyntaxError as exc:
            problems.add("subject", f"template error: {exc.message}")
    if not isinstance(preheader, str) or len(preheader) > MAX_SUBJECT:
        problems.add("preheader", f"must be text of at most {MAX_SUBJECT} characters")
        preheader = ""
    checked = check_blocks(blocks, problems)
    problems.raise_any()
    made = compile_template(subject, preheader, checked)
    try:
        rendered = render(made, sample or {"contact": {}}, PlainLinks(made.links))
    except Exception as exc:
        problems.add("blocks", f"template error: {exc}")
        problems.raise_any()
        raise
    size = len(rendered.html.encode())
    if size > SIZE_LIMIT:
        problems.add(
            "blocks",
            f"the email's HTML is {size // 1024} KB; Gmail clips messages over "
            f"{GMAIL_CLIP_BYTES // 1024} KB, keep it under {SIZE_LIMIT // 1024} KB",
        )
    problems.raise_any()
    return subject, preheader, checked
