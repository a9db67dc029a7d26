"""Seed 002's job routes under ``/api``, in its own shapes (no envelope): create a job (its eval
invoice), read it (which advances it), claim its refund."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from aiohttp import web
from pydantic import Field

from lf_web import RequestBody, event_metadata, parse_body
from lf_web.envelope import dumps
from lightning_jobs.domain.errors import JobNotFound
from lightning_jobs.http.keys import FLOW

routes = web.RouteTableDef()


class CreateJobRequest(RequestBody):
    request: str = Field(min_length=1, max_length=20_000)


class ClaimRefundRequest(RequestBody):
    invoice: str = Field(min_length=1, max_length=2_000)


def answer(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=dumps)


def job_id_of(request: web.Request) -> UUID:
    """Seed 002's ids are strings: one that is no job id names no job (404, not 400)."""
    try:
        return UUID(request.match_info["id"])
    except ValueError:
        raise JobNotFound() from None


@routes.post("/api/jobs")
async def create_job(request: web.Request) -> web.Response:
    body = await parse_body(request, CreateJobRequest)
    job = await request.app[FLOW].create(body.request, metadata=event_metadata(request, "client"))
    return answer(
        {"jobId": job["job_id"], "createdAt": job["created_at"], "evalInvoice": eval_invoice(job)}, 201
    )


@routes.get("/api/jobs/{id}")
async def get_job(request: web.Request) -> web.Response:
    return answer(job_view(await request.app[FLOW].advance(job_id_of(request))))


@routes.post("/api/jobs/{id}/refund")
async def claim_refund(request: web.Request) -> web.Response:
    job_id = job_id_of(request)
    body = await parse_body(request, ClaimRefundRequest)
    paid = await request.app[FLOW].claim_refund(
        job_id, body.invoice, metadata=event_metadata(request, "client")
    )
    return answer({"ok": True, **paid, "message": f"Refund of {paid['refundAmountSats']} sats sent"})


# --- views -----------------------------------------------------------------------------------------


def eval_invoice(job: dict[str, Any]) -> dict[str, Any]:
    return invoice_info(job["eval_invoice"], job["eval_amount_sats"], job["eval_payment_hash"])


def invoice_info(payment_request: str, amount_sats: int, payment_hash: str) -> dict[str, Any]:
    # paymentHash (ours, as seed 002's SessionInvoiceInfo has it): what the dev route pays by.
    return {"paymentRequest": payment_request, "amountSats": amount_sats, "paymentHash": payment_hash}


def _number(decimal_text: str) -> float:
    # Seed 002 types these USD amounts and rates as JSON numbers; they are shown, never summed
    # (every amount that moves is integer sats).
    return float(decimal_text)


def job_view(job: dict[str, Any]) -> dict[str, Any]:
    state = job["state"]
    view: dict[str, Any] = {
        "jobId": job["job_id"],
        "state": state,
        "createdAt": job["created_at"],
        "completedAt": job["completed_at"] if state == "complete" else None,
    }
    if state == "awaiting_eval_payment":
        view["evalInvoice"] = eval_invoice(job)
    pricing = job["pricing"]
    if state == "awaiting_work_payment":
        view["workInvoice"] = invoice_info(
            job["work_invoice"], job["work_amount_sats"], job["work_payment_hash"]
        )
    if pricing is not None:
        view["pricingBreakdown"] = {
            "estimatedCostUsd": _number(pricing["estimatedCostUsd"]),
            "marginPct": _number(pricing["marginPct"]),
            "btcPriceUsd": _number(pricing["btcPriceUsd"]),
            "btcPriceSource": pricing["btcPriceSource"],
        }
    if job["reason"] is not None:
        view["reason"] = job["reason"]
    if state == "complete":
        view["result"] = job["result"]
        view["costLedger"] = cost_ledger(job)
    if state == "failed":
        view["errorMessage"] = job["error_message"]
        view["costLedger"] = {
            "refundAmountSats": job["refund_amount_sats"],
            "refundState": job["refund_state"],
        }
    return view


def cost_ledger(job: dict[str, Any]) -> dict[str, Any]:
    ledger, pricing = job["cost_ledger"], job["pricing"]
    return {
        "actualInputTokens": ledger["actualInputTokens"],
        "actualOutputTokens": ledger["actualOutputTokens"],
        "totalTokens": ledger["actualInputTokens"] + ledger["actualOutputTokens"],
        "actualCostUsd": _number(ledger["actualCostUsd"]),
        "actualChargeUsd": _number(ledger["actualChargeUsd"]),
        "estimatedCostUsd": _number(pricing["estimatedCostUsd"]),
        "actualAmountSats": ledger["actualAmountSats"],
        "workAmountSats": ledger["workAmountSats"],
        "refundAmountSats": job["refund_amount_sats"],
        "refundState": job["refund_state"],
        "marginPct": _number(pricing["marginPct"]),
        "btcPriceUsd": _number(pricing["btcPriceUsd"]),
    }
