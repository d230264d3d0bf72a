"""``POST /billing/stripe/webhook``: Stripe's events, verified and applied once."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_400_BAD_REQUEST,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from orbit.billing.webhooks import InvalidSignatureError, apply_event, verify
from orbit.platform.runtime import Runtime


@post("/billing/stripe/webhook", tags=["billing"], status_code=HTTP_200_OK)
async def stripe_webhook(request: Request[Any, Any, Any], runtime: Runtime) -> Response[Any]:
    """Verify the signature on the raw body, then record and apply the event in one transaction.

    Answers 200 for duplicates and unknown customers too (Stripe stops retrying), 400 for
    a bad signature (nothing is written), 503 while no webhook secret is configured.
    """
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
        return Response(
            {"status_code": 400, "detail": f"invalid Stripe signature: {exc}"},
            status_code=HTTP_400_BAD_REQUEST,
        )
    outcome = await apply_event(runtime.db, event)
    return Response({"id": outcome.event_id, "result": outcome.result}, status_code=HTTP_200_OK)
