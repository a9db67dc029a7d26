"""``POST /execute/image``: images from an image model (fal FLUX, Gemini), on the lenser's credits;
and ``POST /internal/executions/image``, the same for our own services, funded as
``/internal/executions`` is.

The body is written as REFERENCE shows it (``num_images``, ``image_size``; camelCase accepted too);
the answer is camelCase like ``/execute/wallet``'s: ``{urls, units, provider, model, creditsCharged,
executionId}``. Checks run cheapest first, as for text: the rate limit (its own, 30 a minute), the
body and the prompt, the model and its price, and only then the wallet.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any
from uuid import UUID

from aiohttp import web
from pydantic import AfterValidator, Field, StrictInt, model_validator

from execution_proxy.application.images import (
    MAX_IMAGES,
    MAX_PROMPT_CHARS,
    ImageFunding,
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
INTERNAL_ACTOR = "internal"


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


class InternalImageBody(ImageBody):
    """``/internal/executions``' funding and payer fields (``http/internal.py``), for images: the
    caller's stored key is a chat feature, so ``user_byok_cloud`` is no funding here. No size given:
    the provider's own default (fal: landscape 4:3; Gemini: square)."""

    funding: ImageFunding
    lenser_id: UUID | None = None
    sponsor_id: UUID | None = None
    image_size: ImageSize | None = None  # type: ignore[assignment]
    reference_id: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _funding_names_its_payer(self) -> InternalImageBody:
        needed = {"platform_credit": "lenser_id", "sponsored": "sponsor_id"}.get(self.funding)
        if needed is not None and getattr(self, needed) is None:
            raise ValueError(f"funding {self.funding} needs {needed}")
        return self


@routes.post("/internal/executions/image")
async def execute_internal_image(request: web.Request) -> web.Response:
    """Idempotent per ``referenceId`` as ``/internal/executions`` is: a retry of an ended execution
    is its recorded answer (``replayed: true``), the provider not called and nothing charged again."""
    body = await parse_body(request, InternalImageBody)
    order = ImageOrder(
        provider=body.provider,
        model=body.model,
        prompt=body.prompt,
        num_images=body.num_images,
        image_size=body.image_size,
        lenser_id=body.lenser_id,
        payer_id={"platform_credit": body.lenser_id, "sponsored": body.sponsor_id}.get(body.funding),
        funding=body.funding,
        reference_id=body.reference_id,
    )
    outcome = await Images(request.app[EXECUTIONS]).run(
        order, request_id=request[REQUEST_ID], metadata=event_metadata(request, INTERNAL_ACTOR)
    )
    return ok(request, {**outcome_view(outcome), "replayed": outcome.replayed})
