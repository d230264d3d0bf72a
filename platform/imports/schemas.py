"""Imports and exports as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

ImportMode = Literal["create", "update", "upsert"]
ObjectType = Literal["contact", "company", "deal"]
FileFormat = Literal["csv", "xlsx"]


class ImportStart(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How to import an uploaded file: which column goes to which field, and how to match."""

    mapping: Annotated[dict[str, str], Meta(max_length=200)]
    """``{column heading: field}``; fields are those the upload lists (``custom.<key>`` too)."""
    mode: ImportMode = "upsert"
    dedupe_key: Annotated[str, Meta(max_length=120)] | None = None
    """The field existing records are matched by (default: email / domain when mapped)."""
    strict: bool = False
    """Roll back everything when any row is bad (otherwise bad rows are skipped and listed)."""


class ImportOut(msgspec.Struct, kw_only=True):
    """One import and its progress."""

    id: UUID
    object_type: str
    status: str
    file_name: str
    file_format: str
    encoding: str | None
    size_bytes: int
    columns: list[str]
    mapping: dict[str, str]
    mode: str
    dedupe_key: str | None
    strict: bool
    total_rows: int
    rows_done: int
    created: int
    updated: int
    errors: int
    rate_per_second: float | None
    eta_seconds: float | None
    message: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    errors_url: str


class ImportPreview(msgspec.Struct, kw_only=True):
    """An uploaded file ready to map: its first rows and a suggested mapping."""

    import_: ImportOut = msgspec.field(name="import")
    rows: list[list[str]]
    suggested_mapping: dict[str, str]
    fields: dict[str, str]
    """Every field a column can be mapped to, with its label."""
    dedupe_keys: list[str]


class ExportRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A list to export: a saved view and/or filters, sort, ``q`` and columns."""

    object_type: ObjectType
    format: FileFormat = "csv"
    view: str | None = None
    filters: str | None = None
    sort: str | None = None
    q: str | None = None
    columns: str | None = None


class ExportOut(msgspec.Struct, kw_only=True):
    """One background export."""

    id: UUID
    object_type: str
    format: str
    status: str
    rows_done: int
    size_bytes: int
    message: str
    created_at: datetime
    finished_at: datetime | None
    download_url: str | None
