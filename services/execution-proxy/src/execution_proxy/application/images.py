"""An image execution (fal FLUX models, Gemini image models), from an order to a recorded
outcome, like a chat one.

    prepare   the model from the catalogue (an image model: a token model is not found here), its
              provider with the platform's key, the quote per image, and the most the order can
              cost (every image it asks for) reserved in the payer's wallet (none: ``service``)
    generate  the provider's images
    record    through ``Executions``' own record path: the same ``Execution`` aggregate, kind
              ``image``, its units the images returned; a failure releases the reservation

A provider may return fewer images than were asked for: the order is charged for those it returned
(and never for more than it asked: any extra is not handed out). Images run on the platform's key
only; the caller's own key is a chat feature for now.

An order with a ``reference_id`` (``POST /internal/executions/image``) is idempotent as a chat one
is: its execution id is derived from the reference (in a namespace of its own, so a chat reference
never names an image), and a retry of an ended execution is answered from the record, its images
kept for it (``execution_outputs``, a day) without calling the provider again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args
from uuid import UUID

from execution_proxy.adapters.providers.base import ImageProvider, ImageRequest, ProviderError
from execution_proxy.application.executions import Executions, Funded, execution_id_of, refuse_failed
from execution_proxy.domain import errors
from execution_proxy.domain.execution import CHARGED
from execution_proxy.domain.pricing import Metered
from execution_proxy.metrics import PROVIDER_LATENCY

ImageSize = Literal["square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"]
IMAGE_SIZES: tuple[str, ...] = get_args(ImageSize)
MAX_IMAGES = 4
MAX_PROMPT_CHARS = 4000
ImageFunding = Literal["platform_credit", "sponsored", "service"]
REFERENCE_NAMESPACE = UUID("0b7c3f4e-2a61-4d0c-8f5e-9d1a6c2e7b34")


@dataclass(frozen=True, slots=True)
class ImageOrder:
    provider: str
    model: str
    prompt: str
    """Already checked (``http/images.py``): non-empty, at most ``MAX_PROMPT_CHARS``, no controls."""
    num_images: int
    image_size: ImageSize | None
    """None: the provider's own default (fal: landscape 4:3; Gemini: square)."""
    lenser_id: UUID | None = None
    payer_id: UUID | None = None
    """The wallet charged: the lenser's (platform_credit) or the sponsor's (sponsored)."""
    funding: ImageFunding = "platform_credit"
    reference_id: str | None = None
    """The caller's idempotency key (internal callers): one execution per reference."""

    # What the record asks of every order (``executions.Order``): no stored key.
    @property
    def key_id(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class ImageOutcome:
    execution_id: UUID
    urls: tuple[str, ...]
    units: int
    provider: str
    model: str
    credits_charged: int
    replayed: bool = False
    """Answered from the record of an earlier attempt with the same reference id."""


@dataclass(slots=True, kw_only=True)
class PreparedImages(Funded):
    """An image order ready for its provider: the model decided, the money (if any) reserved."""

    kind: ClassVar[str] = "image"
    order: ImageOrder
    request: ImageRequest
    provider: ImageProvider
    api_key: str | None


class Images:
    """The image use case, on the catalogue, wallet, providers and record of ``Executions``."""

    def __init__(self, executions: Executions) -> None:
        self.executions = executions

    async def run(self, order: ImageOrder, *, request_id: str, metadata: dict[str, Any]) -> ImageOutcome:
        prepared = await self.prepare(order, request_id=request_id, metadata=metadata)
        if isinstance(prepared, ImageOutcome):
            return prepared
        return await self.generate(prepared)

    @staticmethod
    def execution_id(order: ImageOrder) -> UUID:
        return execution_id_of(order, REFERENCE_NAMESPACE)

    async def prepare(
        self, order: ImageOrder, *, request_id: str, metadata: dict[str, Any]
    ) -> PreparedImages | ImageOutcome:
        """The order ready to run, or (a retried reference) the outcome it already had."""
        execution_id = self.execution_id(order)
        if order.reference_id is not None and (earlier := await self.recorded(execution_id)) is not None:
            return earlier
        executions = self.executions
        catalogue = await executions.catalogue.current()
        model = catalogue.model(order.model, order.provider)
        if model.unit_type != "image":
            raise errors.ModelNotFound(order.model)  # a token model is executed by /execute/wallet
        provider = executions.providers.images.get(model.provider)
        if provider is None or not executions.providers.has_platform_key(model.provider):
            raise errors.UnsupportedProvider(model.provider)
        quote, reservation = None, None
        if order.funding in CHARGED:
            quote = catalogue.quote(model.key, executions.clock(), executions.credits_per_usd)
            assert order.payer_id is not None, "a charged order names its payer"
            reservation = await executions.wallet.reserve(
                order.payer_id,
                quote.most_units(order.num_images),
                reference_id=str(execution_id),
                ttl_seconds=executions.reservation_ttl_seconds,
                request_id=request_id,
            )
        return PreparedImages(
            execution_id=execution_id,
            order=order,
            model=model,
            quote=quote,
            reservation=reservation,
            request_id=request_id,
            metadata=metadata,
            request=ImageRequest(model.provider_model, order.prompt, order.num_images, order.image_size),
            provider=provider,
            api_key=executions.providers.platform_key(model.provider),
        )

    async def generate(self, prepared: PreparedImages) -> ImageOutcome:
        sent = time.perf_counter()
        try:
            result = await prepared.provider.generate(prepared.request, prepared.api_key)
        except ProviderError as failure:
            raise await self.executions.provider_failed(prepared, failure, sent) from None
        except BaseException as interruption:
            await self.executions.interrupted(prepared, interruption)
            raise
        PROVIDER_LATENCY.labels(prepared.model.provider, "ok").observe(time.perf_counter() - sent)
        urls = result.urls[: prepared.order.num_images]
        kept = {"urls": list(urls)} if prepared.order.reference_id is not None else None
        # The count of images is the provider's own answer, hence its usage source.
        charged = await self.executions.record_use(prepared, Metered(units=len(urls)), "provider", kept=kept)
        if charged is None:  # another attempt with the same reference recorded it first
            earlier = await self.recorded(prepared.execution_id)
            assert earlier is not None
            return earlier
        return ImageOutcome(
            execution_id=prepared.execution_id,
            urls=urls,
            units=len(urls),
            provider=prepared.model.provider,
            model=prepared.model.key,
            credits_charged=charged.credits,
        )

    async def recorded(self, execution_id: UUID) -> ImageOutcome | None:
        """An ended image execution as its caller was answered (no images once they were pruned)."""
        row = await self.executions.record_row(execution_id)
        if row is None:
            return None
        refuse_failed(failed=row["status"] == "failed", cancelled=row["cancelled"])
        output = row["output"]
        return ImageOutcome(
            execution_id=execution_id,
            urls=tuple(output["urls"]) if output else (),
            units=row["units"],
            provider=row["provider"],
            model=row["model"],
            credits_charged=row["credits_charged"],
            replayed=True,
        )
