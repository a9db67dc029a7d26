"""Service-to-service routes under /internal (X-Platform-Api-Key; never routed by the gateway):
executions for platform-api and lightning-jobs, and the catalogue's administration.

Model keys may hold slashes (``fal-ai/flux/dev``), so they travel in bodies, not in paths.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from aiohttp import web
from pydantic import Field, StrictBool, StrictInt, model_validator

from execution_proxy.application.detached import Detached
from execution_proxy.application.executions import ChatOrder, ChatOutcome
from execution_proxy.domain import errors
from execution_proxy.domain.catalogue import GLOBAL, Catalogue, Model
from execution_proxy.domain.messages import sanitize
from execution_proxy.domain.pricing import MarginPolicy, Price, Rounding
from execution_proxy.http.execute import (
    MAX_TOKENS_LIMIT,
    follow_sse,
    outcome_view,
    replay_sse,
    stream_sse,
)
from execution_proxy.http.keys import CATALOGUE, DETACHED, EXECUTIONS
from lf_contracts.errors import EXECUTE_PROVIDER_FAILED, ApiError
from lf_web import REQUEST_ID, RequestBody, event_metadata, ok, parse_body

routes = web.RouteTableDef()
ACTOR = "internal"


Funding = Literal["platform_credit", "user_byok_cloud", "sponsored", "service"]


class ExecutionRequest(RequestBody):
    """``funding``: whose money pays. platform_credit: the lenser's wallet; sponsored: the
    sponsor's; user_byok_cloud: the lenser's stored key, nothing charged; service: the calling
    service's own account, nothing charged (lightning-jobs is paid in sats)."""

    funding: Funding
    lenser_id: UUID | None = None
    sponsor_id: UUID | None = None
    key_ref_id: UUID | None = None
    provider: str = Field(min_length=1, max_length=40)
    model: str = Field(min_length=1, max_length=200)
    messages: Any = None
    max_tokens: StrictInt | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float | None = Field(default=None, ge=0, le=2)
    reference_id: str | None = Field(default=None, min_length=1, max_length=200)
    stream: StrictBool = False

    @model_validator(mode="after")
    def _funding_names_its_payer(self) -> ExecutionRequest:
        needed = {
            "platform_credit": ("lenser_id",),
            "sponsored": ("sponsor_id",),
            "user_byok_cloud": ("lenser_id", "key_ref_id"),
            "service": (),
        }[self.funding]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"funding {self.funding} needs {', '.join(missing)}")
        return self


class CancelRequest(RequestBody):
    """Names an execution as ``ExecutionRequest`` does: its funding, payer and reference."""

    funding: Funding
    lenser_id: UUID | None = None
    sponsor_id: UUID | None = None
    reference_id: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _funding_names_its_payer(self) -> CancelRequest:
        needed = {"platform_credit": "lenser_id", "sponsored": "sponsor_id", "user_byok_cloud": "lenser_id"}
        name = needed.get(self.funding)
        if name is not None and getattr(self, name) is None:
            raise ValueError(f"funding {self.funding} needs {name}")
        return self


def _payer(body: ExecutionRequest | CancelRequest) -> UUID | None:
    return {"platform_credit": body.lenser_id, "sponsored": body.sponsor_id}.get(body.funding)


@routes.post("/internal/executions")
async def execute(request: web.Request) -> web.StreamResponse:
    """With ``stream`` and a ``referenceId``: detached from this connection (``application/
    detached.py``): a retry attaches to it while it runs here, or is replayed from its record."""
    body = await parse_body(request, ExecutionRequest)
    order = ChatOrder(
        funding=body.funding,
        provider=body.provider,
        model=body.model,
        messages=sanitize(body.messages),
        lenser_id=body.lenser_id,
        payer_id=_payer(body),
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        key_id=body.key_ref_id,
        reference_id=body.reference_id,
    )
    executions, detached = request.app[EXECUTIONS], request.app[DETACHED]
    metadata = event_metadata(request, ACTOR)
    if body.reference_id is not None and body.stream:
        started = await detached.start(order, request_id=request[REQUEST_ID], metadata=metadata)
        if isinstance(started, ChatOutcome):
            return await replay_sse(request, started)
        return await follow_sse(request, started)
    if body.reference_id is not None and (running := detached.running(order)) is not None:
        return ok(request, _answer_view(await _outcome_of(running), replayed=False))
    prepared = await executions.prepare(
        order,
        request_id=request[REQUEST_ID],
        metadata=metadata,
        claim=detached.refuse_if_cancelled if body.reference_id is not None else None,
    )
    if isinstance(prepared, ChatOutcome):
        return ok(request, _answer_view(prepared, replayed=True))
    if body.stream:
        return await stream_sse(request, executions.stream(prepared))
    return ok(request, _answer_view(await executions.complete(prepared), replayed=False))


def _answer_view(outcome: ChatOutcome, *, replayed: bool) -> dict[str, Any]:
    """An internal JSON answer: ``cutShort`` says its content is not a whole answer (a retry
    replayed from a stream the server stopping, a cancel or the provider cut short)."""
    return {**outcome_view(outcome), "replayed": replayed, "cutShort": outcome.cut_short}


def _record_view(record: ChatOutcome) -> dict[str, Any]:
    return {
        "status": "failed" if record.failed else "succeeded",
        **outcome_view(record),
        "cancelled": record.cancelled,
        "cutShort": record.cut_short,
    }


async def _outcome_of(running: Detached) -> ChatOutcome:
    """A running detached execution's outcome for a buffered retry of its reference."""
    outcome = await running.outcome()
    if outcome is not None:
        return outcome
    if running.stream.cancelled:
        raise errors.ExecutionCancelled()
    failure = running.stream.failure
    raise ApiError(EXECUTE_PROVIDER_FAILED, str(failure) if failure else EXECUTE_PROVIDER_FAILED.message)


@routes.post("/internal/executions/cancel")
async def cancel(request: web.Request) -> web.Response:
    """Stop the execution of a reference, wherever it runs, or keep it from ever starting."""
    body = await parse_body(request, CancelRequest)
    cancellation = await request.app[DETACHED].cancel(
        funding=body.funding, payer_id=_payer(body), lenser_id=body.lenser_id, reference_id=body.reference_id
    )
    record = cancellation.execution
    return ok(
        request,
        {
            "referenceId": body.reference_id,
            "executionId": cancellation.execution_id,
            "state": cancellation.state,
            "execution": None if record is None else _record_view(record),
        },
    )


# --- the catalogue -----------------------------------------------------------------------------


class ModelRequest(RequestBody):
    key: str = Field(min_length=1, max_length=200)
    provider: str = Field(min_length=1, max_length=40)
    provider_model: str | None = Field(default=None, min_length=1, max_length=200)
    display_name: str = Field(min_length=1, max_length=200)
    unit_type: Literal["tokens", "image"] = "tokens"
    max_output_tokens: StrictInt = Field(default=4096, ge=1, le=MAX_TOKENS_LIMIT)
    active: StrictBool = True


class PriceRequest(RequestBody):
    """USD; give amounts as strings ("0.003") to keep every digit. (``…Per1k`` spelled by hand:
    the camelCase generator would say ``Per1K``.)"""

    model_key: str = Field(min_length=1, max_length=200)
    effective_from: datetime | None = None
    input_per_1k: Decimal = Field(default=Decimal(0), ge=0, alias="inputPer1k")
    output_per_1k: Decimal = Field(default=Decimal(0), ge=0, alias="outputPer1k")
    per_unit: Decimal = Field(default=Decimal(0), ge=0)
    cache_read_per_1k: Decimal | None = Field(default=None, ge=0, alias="cacheReadPer1k")
    cache_write_per_1k: Decimal | None = Field(default=None, ge=0, alias="cacheWritePer1k")


class MarginPolicyRequest(RequestBody):
    scope: str = Field(default=GLOBAL, min_length=1, max_length=200)
    markup_percent: Decimal = Field(default=Decimal(0), ge=-100)
    fixed_fee_usd: Decimal = Field(default=Decimal(0), ge=0)
    rounding: Rounding = Rounding.CEIL
    min_charge_credits: StrictInt = Field(default=1, ge=0)
    max_charge_credits: StrictInt | None = Field(default=None, ge=0)


@routes.put("/internal/catalogue/models")
async def put_model(request: web.Request) -> web.Response:
    body = await parse_body(request, ModelRequest)
    model = Model(
        body.key,
        body.provider,
        body.provider_model or body.key,
        body.display_name,
        body.unit_type,
        body.max_output_tokens,
        body.active,
    )
    changed = await request.app[CATALOGUE].put_model(model, metadata=event_metadata(request, ACTOR))
    return ok(request, {"model": _model_view(model), "changed": changed})


@routes.post("/internal/catalogue/prices")
async def set_price(request: web.Request) -> web.Response:
    body = await parse_body(request, PriceRequest)
    price = Price(
        body.effective_from or datetime.now(UTC),
        body.input_per_1k,
        body.output_per_1k,
        body.per_unit,
        body.cache_read_per_1k,
        body.cache_write_per_1k,
    )
    await request.app[CATALOGUE].set_price(body.model_key, price, metadata=event_metadata(request, ACTOR))
    return ok(request, {"modelKey": body.model_key, "price": _price_view(price)}, status=201)


@routes.put("/internal/catalogue/margin-policy")
async def set_margin_policy(request: web.Request) -> web.Response:
    body = await parse_body(request, MarginPolicyRequest)
    policy = MarginPolicy(
        body.markup_percent,
        body.fixed_fee_usd,
        body.rounding,
        body.min_charge_credits,
        body.max_charge_credits,
    )
    await request.app[CATALOGUE].set_policy(body.scope, policy, metadata=event_metadata(request, ACTOR))
    return ok(request, {"scope": body.scope, "policy": _policy_view(policy)})


@routes.get("/internal/catalogue")
async def show_catalogue(request: web.Request) -> web.Response:
    catalogue: Catalogue = await request.app[CATALOGUE].current()
    models = [
        {
            **_model_view(model),
            "prices": [_price_view(price) for price in catalogue.prices.get(key, ())],
            "marginPolicy": _policy_view(catalogue.policy_for(key)),
        }
        for key, model in sorted(catalogue.models.items())
    ]
    return ok(request, {"models": models})


def _model_view(model: Model) -> dict[str, Any]:
    return {
        "key": model.key,
        "provider": model.provider,
        "providerModel": model.provider_model,
        "displayName": model.display_name,
        "unitType": model.unit_type,
        "maxOutputTokens": model.max_output_tokens,
        "active": model.active,
    }


def _price_view(price: Price) -> dict[str, Any]:
    def amount(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "effectiveFrom": price.effective_from,
        "inputPer1k": amount(price.input_per_1k),
        "outputPer1k": amount(price.output_per_1k),
        "perUnit": amount(price.per_unit),
        "cacheReadPer1k": amount(price.cache_read_per_1k),
        "cacheWritePer1k": amount(price.cache_write_per_1k),
    }


def _policy_view(policy: MarginPolicy) -> dict[str, Any]:
    return {
        "markupPercent": str(policy.markup_percent),
        "fixedFeeUsd": str(policy.fixed_fee_usd),
        "rounding": policy.rounding.value,
        "minChargeCredits": policy.min_charge_credits,
        "maxChargeCredits": policy.max_charge_credits,
    }
