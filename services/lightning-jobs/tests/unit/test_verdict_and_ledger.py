"""The evaluation's verdict, and the ledger's postings: each event's lines balance."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from lf_eventstore import RecordedEvent
from lightning_jobs.domain.verdict import NO_VERDICT, verdict_of
from lightning_jobs.projections.ledger import postings


def test_the_first_json_verdict_in_the_answer_decides():
    answer = 'Sure. {"accepted": false, "reason": "harmful"} and {"accepted": true}'
    assert (verdict_of(answer).accepted, verdict_of(answer).reason) == (False, "harmful")


def test_an_answer_without_a_verdict_is_accepted():
    assert verdict_of("lo la so we go").accepted is True
    assert verdict_of("lo la so we go").reason == NO_VERDICT
    assert verdict_of('{"accepted": "no"}').accepted is True


def _event(type_: str, **data) -> RecordedEvent:
    return RecordedEvent(0, 0, "job-x", 1, uuid4(), type_, {"job_id": "j", **data}, {}, datetime.now(UTC))


def test_every_event_that_moves_sats_posts_balanced_lines():
    events = [
        _event("EvalPaid", amount_sats=10),
        _event("WorkInvoiced", eval_fee_sats=10),
        _event("JobRejected", eval_fee_sats=10),
        _event("WorkPaid", amount_sats=100),
        _event("JobCompleted", work_amount_sats=100, actual_amount_sats=30, refund_amount_sats=70),
        _event("JobFailed", refund_amount_sats=100),
        _event("RefundPaid", amount_sats=70),
    ]
    for event in events:
        lines = postings(event)
        assert lines, event.type
        assert sum(amount for _, amount in lines) == 0, event.type
