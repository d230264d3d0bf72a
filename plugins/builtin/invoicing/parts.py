"""The plugin's parts, each a module of this package, and what each one contributes.

The plugin is one pluggy plugin (one module, ``orbit.plugins.builtin.invoicing``), but
its features live in separate modules that may be written and changed independently.
A part module declares what it adds with optional module attributes, and the package's
hooks gather them:

- ``TABLES``, ``SCOPES``, ``EMITS``, ``EVENTS``: tuples of names for the manifest;
- ``SETTINGS``: a tuple of :class:`~orbit.plugins.api.Setting` for the manifest;
- ``api_routes()``, ``page_routes()``, ``public_routes()``: Litestar handlers;
- ``scheduled_jobs()``: :class:`~orbit.plugins.api.ScheduledJob` list;
- ``OUTBOX_TASKS``: ``{task name: async handler(ctx, row)}`` run after commit by the
  outbox job (:mod:`.outbox`);
- ``FINALIZE_TASKS``: ``((position, task name), …)`` queued in the outbox when an invoice
  or credit note is finalized, run in position order per invoice;
- ``async timeline_entries(ctx, subject_type, subject_id)`` and
  ``async ui_slot(ctx, slot, subject_id)``: answers merged into the hooks';
- ``async on_event(ctx, event)``: domain events of the types in ``EVENTS``.

A part listed in :data:`PARTS` whose module does not exist (yet) is skipped.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

PACKAGE = __name__.rpartition(".")[0]

PARTS = (
    "catalog",
    "quotes",
    "invoices",
    "outbox",
    "documents",
    "payments",
    "dunning",
    "portal",
    "pages",
)
"""Part modules in the order their contributions are gathered."""


def load_parts() -> list[ModuleType]:
    """The part modules that exist, imported."""
    found: list[ModuleType] = []
    for name in PARTS:
        full = f"{PACKAGE}.{name}"
        try:
            found.append(importlib.import_module(full))
        except ModuleNotFoundError as exc:
            if exc.name != full:
                raise
    return found


def gather_names(parts: list[ModuleType], attribute: str) -> tuple[str, ...]:
    """The union of the parts' ``attribute`` tuples, in order, without repeats."""
    names: dict[str, None] = {}
    for part in parts:
        for name in getattr(part, attribute, ()):
            names[name] = None
    return tuple(names)
