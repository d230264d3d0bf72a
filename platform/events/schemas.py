"""Webhook input and output shapes. Unknown fields are refused by name."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

Url = Annotated[str, Meta(max_length=2000)]
EventType = Annotated[str, Meta(min_length=1, max_length=64)]
EventTypes = Annotated[list[EventType], Meta(max_length=64)]
Description = Annotated[str, Meta(max_length=200)]


class WebhookCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new endpoint: an http(s) URL and the event types it receives."""

    # Defaults so that a missing field gets the service's error naming it.
    url: Url = ""
    events: EventTypes = msgspec.field(default_factory=list)
    description: Description = ""
    active: bool = True


class WebhookPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A partial update: only the fields present change."""

    url: Url | UnsetType = UNSET
    events: EventTypes | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class WebhookOut(msgspec.Struct, kw_only=True):
    """An endpoint as the API returns it (the secret only once, on creation)."""

    id: UUID
    url: str
    description: str
    events: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut, kw_only=True):
    """The new endpoint with its signing secret: store it now, it is not shown again."""

    secret: str


class WebhookList(msgspec.Struct, kw_only=True):
    """The workspace's endpoints, oldest first."""

    items: list[WebhookOut]


class AttemptOut(msgspec.Struct, kw_only=True):
    """One delivery attempt: what the receiver answered, or why it could not."""

    id: UUID
    event_id: UUID
    event_type: str
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    attempted_at: datetime
    delivery_status: str
    """The delivery's current state: pending, succeeded or failed."""


class AttemptList(msgspec.Struct, kw_only=True):
    """Attempts of one endpoint, newest first."""

    items: list[AttemptOut]


class DeliveryOut(msgspec.Struct, kw_only=True):
    """The state of one event's delivery to one endpoint."""

    id: UUID
    event_id: UUID
    endpoint_id: UUID
    status: str
    attempts: int
    next_attempt_at: datetime
