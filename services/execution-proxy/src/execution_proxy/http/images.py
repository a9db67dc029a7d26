"""``POST /execute/image``: images from a fal FLUX model, on the lenser's credits.

The body is written as REFERENCE shows it (``num_images``, ``image_size``; camelCase accepted too);
the answer is camelCase like ``/execute/wallet``'s: ``{urls, units, provider, model, creditsCharged,
executionId}``. Checks run cheapest first, as for text: the rate limit (its own, 30 a minute), the
body and the prompt, the model and its price, and only then the wallet.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from aiohttp import web
from pydantic import AfterValidator, Field, StrictInt

from execution_proxy.application.images import (
    MAX_IMAGES,
    MAX_PROMPT_CHARS,
    ImageOrder,
    ImageOutcome,
    Images,
    ImageSize,
)
from execution_proxy.domain.messages import has_control_characters
from execution_proxy.http.keys import EXECUTIONS, RATE_LIMITER
from lf_web import REQUEST_ID, RequestBody, enforce, event_metadata, ok, parse_body, require_user

routes = web.RouteTableDef()

# Per lenser per minute (issue 9), apart from the text routes' limit: an image costs far more.
IMAGES_PER_MINUTE = 30


def _checked_prompt(prompt: str) -> str:
    """The prompt NFC-normalised (as message content is), or a ``validation_error`` on ``prompt``.
    There are no messages here, so the rules of ``execute.invalid_messages`` are a field's rules."""
    prompt = unicodedata.normalize("NFC", prompt)
    if not prompt.strip():
        raise ValueError("must not be empty")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"at most {MAX_PROMPT_CHARS} characters")
    if has_control_characters(prompt):
        raise ValueError("contains control characters")
    return prompt


class ImageBody(RequestBody):
    provider: str = Field(min_length=1, max_length=40)
    model: str = Field(min_length=1, max_length=200)
    prompt: Annotated[str, Field(strict=True), AfterValidator(_checked_prompt)]
    # fal's own defaults when left out: one image, landscape 4:3.
    num_images: StrictInt = Field(default=1, ge=1, le=MAX_IMAGES)
    image_size: ImageSize = "landscape_4_3"


def outcome_view(outcome: ImageOutcome) -> dict[str, Any]:
    return {
        "urls": list(outcome.urls),
        "units": outcome.units,
        "provider": outcome.provider,
        "model": outcome.model,
        "creditsCharged": outcome.credits_charged,
        "executionId": outcome.execution_id,
    }


@routes.post("/execute/image")
async def execute_image(request: web.Request) -> web.Response:
    lenser_id = await require_user(request)
    await enforce(request, request.app[RATE_LIMITER], f"execute-image:{lenser_id}", IMAGES_PER_MINUTE)
    body = await parse_body(request, ImageBody)
    order = ImageOrder(
        provider=body.provider,
        model=body.model,
        prompt=body.prompt,
        num_images=body.num_images,
        image_size=body.image_size,
        lenser_id=lenser_id,
        payer_id=lenser_id,
    )
    outcome = await Images(request.app[EXECUTIONS]).run(
        order, request_id=request[REQUEST_ID], metadata=event_metadata(request, f"lenser:{lenser_id}")
    )
    return ok(request, outcome_view(outcome))
