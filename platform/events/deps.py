"""Dependencies of the webhook controllers."""

from __future__ import annotations

from litestar.di import Provide

from orbit.platform.events.service import WebhookService
from orbit.platform.runtime import Runtime


def provide_webhooks(runtime: Runtime) -> WebhookService:
    """Webhook endpoint rules."""
    return WebhookService(runtime.db)


WEBHOOK_DEPENDENCIES = {"webhooks": Provide(provide_webhooks, sync_to_thread=False)}
