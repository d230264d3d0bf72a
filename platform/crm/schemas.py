"""Contact input and output shapes. Unknown fields are refused by name."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

Name = Annotated[str, Meta(max_length=100)]
Tag = Annotated[str, Meta(min_length=1, max_length=50)]
Tags = Annotated[list[Tag], Meta(max_length=50)]
Phone = Annotated[str, Meta(max_length=50)]
CompanyName = Annotated[str, Meta(max_length=200)]
Email = Annotated[str, Meta(max_length=320)]


class ContactCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new contact: at least a first name, a last name or an email."""

    first_name: Name = ""
    last_name: Name = ""
    email: Email | None = None
    phone: Phone | None = None
    company_name: CompanyName | None = None
    owner_id: UUID | None = None
    tags: Tags = msgspec.field(default_factory=list)
    custom: dict[str, Any] = msgspec.field(default_factory=dict)


class ContactPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A partial update: only the fields present change; ``null`` clears an optional one."""

    first_name: Name | UnsetType = UNSET
    last_name: Name | UnsetType = UNSET
    email: Email | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET
    company_name: CompanyName | UnsetType | None = UNSET
    owner_id: UUID | UnsetType | None = UNSET
    tags: Tags | UnsetType = UNSET
    custom: dict[str, Any] | UnsetType = UNSET


class ContactOut(msgspec.Struct, kw_only=True):
    """A contact as the API returns it."""

    id: UUID
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    company_name: str | None
    owner_id: UUID | None
    tags: list[str]
    custom: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ContactPage(msgspec.Struct, kw_only=True):
    """One page of contacts; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[ContactOut]
    next_cursor: str | None
