"""The Job aggregate's rules, purely: a step is claimed once, claimed again only after its lease,
reported once; a refund is never negative, claimed once, for exactly what is owed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from lf_service.execution_proxy import ExecutionFailed
from lightning_jobs.application.flow import work_model_of
from lightning_jobs.application.ports import WorkModel, answered_failure
from lightning_jobs.domain.errors import InvalidRefundInvoice, RefundNotClaimable
from lightning_jobs.domain.job import Job, StepClaimed, StepRetried, WorkInvoiced, WorkQuoted

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def a_job() -> Job:
    job = Job()
    job.create(uuid4(), "write a haiku", "e" * 64, "lnbcrt10stub1" + "e" * 64, 10)
    return job


def quoted(job: Job, work_sats: int = 100) -> Job:
    job.eval_paid(NOW, LEASE)
    job.work_invoiced(
        "fine",
        WorkQuoted(
            "w" * 64,
            "lnbcrt100stub1" + "w" * 64,
            work_sats,
            "0.1",
            "20",
            "100000",
            "oracle",
            "local-small",
            "local",
        ),
    )
    return job


def executed(work_sats: int = 100, actual_sats: int = 30) -> Job:
    job = quoted(a_job(), work_sats)
    job.work_paid(NOW, LEASE)
    job.completed(
        "done",
        input_tokens=10,
        output_tokens=20,
        actual_cost_usd="0.01",
        actual_charge_usd="0.03",
        actual_amount_sats=actual_sats,
    )
    return job


def test_only_the_first_to_see_the_payment_claims_the_evaluation():
    job = a_job()
    first = job.eval_paid(NOW, LEASE)
    assert first is not None and (first.step, first.attempt) == ("eval", 1)
    assert job.eval_paid(NOW, LEASE) is None
    assert job.reclaim(NOW + LEASE / 2, LEASE) is None
    assert job.state == "evaluating"


def test_a_lapsed_claim_is_claimed_again_under_the_same_reference():
    job = a_job()
    first = job.eval_paid(NOW, LEASE)
    again = job.reclaim(NOW + LEASE, LEASE)
    assert again is not None and again.attempt == 2
    assert first is not None and again.reference_id == first.reference_id


def test_a_claim_after_a_recorded_failure_asks_under_a_new_reference_and_a_crash_keeps_it():
    job = a_job()
    first = job.eval_paid(NOW, LEASE)
    assert first is not None and first.reference_id == f"lightning:job:{job.job_id}:eval"
    job.retried("eval", first.attempt, "execute.provider_error", "the provider answered 502")
    job.retried("eval", first.attempt, "execute.provider_error", "reported twice")  # changes nothing
    second = job.reclaim(NOW + LEASE, LEASE)
    assert second is not None and second.reference_id == f"lightning:job:{job.job_id}:eval:2"
    job.retried("eval", first.attempt, "execute.provider_error", "a lapsed claimant's late report")
    crashed = job.reclaim(NOW + 2 * LEASE, LEASE)  # the second claimant died: its outcome unknown
    assert crashed is not None and crashed.reference_id == second.reference_id
    assert [type(e) for e in job.pending()].count(StepRetried) == 1


def test_a_claim_recorded_before_executions_were_counted_is_its_steps_first_execution():
    old = StepClaimed.model_validate(
        {"job_id": uuid4(), "step": "eval", "attempt": 1, "lease_until": NOW.isoformat()}
    )
    assert old.execution == 1
    job = a_job()
    job.eval_paid(NOW, LEASE)
    snapshot = job.to_snapshot()
    del snapshot["claim_execution"], snapshot["claim_failed"]  # a snapshot taken before them
    again = Job.from_snapshot(snapshot).reclaim(NOW + LEASE, LEASE)
    assert again is not None and again.reference_id == f"lightning:job:{job.job_id}:eval"


def test_a_step_reports_once():
    job = quoted(a_job())
    job.rejected("too late")  # a lapsed claimant's report after the step moved on
    assert job.state == "awaiting_work_payment"
    assert [type(e).__name__ for e in job.pending()][-1] == "WorkInvoiced"


def test_the_refund_is_the_work_fee_less_the_actual_charge_and_never_negative():
    assert executed(100, 30).refund_owed == 70
    overrun = executed(100, 130)
    assert overrun.refund_owed == 0
    assert overrun.pending()[-1].actual_amount_sats == 100  # the charge is capped at what was paid


def test_a_failed_step_owes_back_what_was_held_for_it():
    job = quoted(a_job())
    job.work_paid(NOW, LEASE)
    job.failed("work", "provider refused")
    assert (job.state, job.refund_owed, job.refund_state) == ("failed", 100, "pending")


def test_a_refund_is_claimed_once_for_exactly_what_is_owed():
    job = executed(100, 30)
    with pytest.raises(InvalidRefundInvoice):
        job.claim_refund("r" * 64, "inv", 71)
    job.claim_refund("r" * 64, "inv", 70)
    with pytest.raises(RefundNotClaimable, match="being paid"):
        job.claim_refund("s" * 64, "inv2", 70)
    job.refund_failed("r" * 64, "no route")
    job.claim_refund("s" * 64, "inv2", 70)
    job.refund_paid("s" * 64)
    with pytest.raises(RefundNotClaimable, match="already paid"):
        job.claim_refund("t" * 64, "inv3", 70)


def test_no_refund_before_the_job_is_done():
    with pytest.raises(RefundNotClaimable, match="not complete"):
        quoted(a_job()).claim_refund("r" * 64, "inv", 1)


def test_a_snapshot_restores_the_job():
    job = executed(100, 30)
    restored = Job.from_snapshot(job.to_snapshot())
    assert restored.to_snapshot() == job.to_snapshot()


def test_a_work_invoice_recorded_before_the_model_was_locked_runs_on_the_model_of_the_settings():
    old = {
        "job_id": str(uuid4()),
        "eval_fee_sats": 10,
        "reason": "fine",
        "work_payment_hash": "w" * 64,
        "work_invoice": "lnbcrt100stub1" + "w" * 64,
        "work_amount_sats": 100,
        "estimated_cost_usd": "0.1",
        "margin_pct": "20",
        "btc_price_usd": "100000",
        "btc_price_source": "oracle",
    }  # an event as recorded before work_model existed: events are never rewritten

    event = WorkInvoiced.model_validate(old)

    assert (event.work_model, event.work_provider) == (None, None)
    assert work_model_of({"pricing": {"estimatedCostUsd": "0.1", "workModel": None}}) is None
    locked = {"pricing": {"workModel": "claude-3-5-haiku-latest", "workProvider": "anthropic"}}
    assert work_model_of(locked) == WorkModel("claude-3-5-haiku-latest", "anthropic")


@pytest.mark.parametrize(
    ("code", "status", "answered"),
    [
        ("execute.provider_error", 502, True),  # the provider failed: execution-proxy recorded it
        ("rate_limited", 429, True),
        ("execution_unavailable", 0, False),  # a timeout: the execution may run on
        ("execute.running_elsewhere", 409, False),  # it runs on another replica of the proxy
    ],
)
def test_only_a_failure_execution_proxy_answered_spends_the_reference(code, status, answered):
    assert answered_failure(ExecutionFailed(code, f"{status}", transient=True)) is answered
