"""``POST /billing/stripe/webhook``: Stripe's events, verified and applied once."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response, post
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_400_BAD_REQUEST,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from orbit.billing.webhooks import InvalidSignatureError, apply_or_queue, verify
from orbit.platform.runtime import Runtime

log = logging.getLogger(__name__)


@post("/billing/stripe/webhook", tags=["billing"], status_code=HTTP_200_OK)
async def stripe_webhook(request: Request[Any, Any, Any], runtime: Runtime) -> Response[Any]:
    """Verify the signature on the raw body, then record and apply the event in one transaction.

    Answers 200 for duplicates and unknown customers too (Stripe stops retrying), 400 for
    a bad signature (nothing is written), and 503 while no webhook secret is configured.
    When applying fails, nothing of the attempt is kept, the event is queued for the
    worker's retries (``stripe_event_retries``, with backoff) and counted in
    ``orbit_stripe_webhooks{outcome="queued"}``; the answer is still 200. Only if even
    queueing fails (the database is down) is it a 500, and Stripe redelivers.
    """
    metrics = request.app.state["metrics"]
    secret = runtime.settings.stripe_webhook_secret
    if not secret:
        return Response(
            {"status_code": 503, "detail": "Stripe is not configured on this Orbit"},
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
        )
    body = await request.body()
    try:
        event = verify(body, request.headers.get("stripe-signature", ""), secret)
    except InvalidSignatureError as exc:
        metrics.stripe_webhooks.labels("invalid_signature").inc()
        return Response(
            {"status_code": 400, "detail": f"invalid Stripe signature: {exc}"},
            status_code=HTTP_400_BAD_REQUEST,
        )
    try:
        outcome = await apply_or_queue(runtime.db, event, runtime.billing)
    except Exception:
        log.exception("Stripe event %s (%s) could not even be queued", event["id"], event["type"])
        metrics.stripe_webhooks.labels("failed").inc()
        return Response(
            {"status_code": 500, "detail": "the event could not be applied; it will be retried"},
            status_code=HTTP_500_INTERNAL_SERVER_ERROR,
        )
    metrics.stripe_webhooks.labels(
        "queued" if outcome.result == "queued for retry" else outcome.result.split(":", 1)[0]
    ).inc()
    return Response({"id": outcome.event_id, "result": outcome.result}, status_code=HTTP_200_OK)
