"""The session aggregate, pure: activation once, reservations that never overdraw, pause, top-up,
resume, idle expiry with its balance owed back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from lightning_jobs.domain.errors import InvalidRefundInvoice, RefundNotClaimable, TopupRefused
from lightning_jobs.domain.session import Refusal, Session, SessionExpired, Started

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
IDLE = timedelta(hours=24)


def active(deposit: int = 100, minimum: int = 10) -> Session:
    session = Session()
    session.open(uuid4(), "hash", "lnbc", deposit, minimum)
    assert session.deposit_paid(NOW) is True
    return session


def test_the_deposit_activates_the_session_once():
    session = active()
    assert session.deposit_paid(NOW) is False
    assert (session.state, session.balance_sats) == ("active", 100)


def test_requests_are_refused_while_awaiting_payment():
    session = Session()
    session.open(uuid4(), "hash", "lnbc", 100, 10)
    assert session.start_request(uuid4(), 10, NOW, IDLE) is Refusal.NOT_ACTIVE


def test_running_requests_hold_their_reservation_so_none_overdraws():
    session = active(deposit=100)
    first = session.start_request(uuid4(), 60, NOW, IDLE)
    assert isinstance(first, Started)
    assert session.start_request(uuid4(), 60, NOW, IDLE) is Refusal.INSUFFICIENT
    assert session.settle_request(first.request_id, "complete", 10, 30, NOW) == 60
    assert isinstance(session.start_request(uuid4(), 60, NOW, IDLE), Started)


def test_a_debit_never_exceeds_the_reservation_and_a_repeated_settlement_changes_nothing():
    session = active(deposit=100)
    started = session.start_request(uuid4(), 40, NOW, IDLE)
    assert isinstance(started, Started)
    assert session.settle_request(started.request_id, "complete", 10, 500, NOW) == 60
    assert session.settle_request(started.request_id, "complete", 10, 500, NOW) == 60


def test_below_the_minimum_it_pauses_and_a_paid_topup_resumes_it():
    session = active(deposit=100, minimum=10)
    started = session.start_request(uuid4(), 100, NOW, IDLE)
    assert isinstance(started, Started)
    session.settle_request(started.request_id, "complete", 10, 85, NOW)
    assert (session.state, session.balance_sats) == ("paused", 5)
    assert session.start_request(uuid4(), 10, NOW, IDLE) is Refusal.INSUFFICIENT
    session.topup_invoiced("topup", "lnbc", 200)
    with pytest.raises(TopupRefused):
        session.topup_invoiced("another", "lnbc", 200)  # one pending top-up at a time
    assert session.topup_paid("topup", NOW) is True
    assert session.topup_paid("topup", NOW) is False
    assert (session.state, session.balance_sats) == ("active", 205)


def test_an_idle_session_expires_and_owes_its_balance_back():
    session = active(deposit=100)
    assert session.expire_if_idle(NOW + IDLE - timedelta(seconds=1), IDLE) is False
    assert session.start_request(uuid4(), 10, NOW + IDLE, IDLE) is Refusal.EXPIRED
    expired = [e for e in session.pending() if isinstance(e, SessionExpired)]
    assert [e.owed_sats for e in expired] == [100]
    assert (session.state, session.balance_sats) == ("expired", 0)
    with pytest.raises(TopupRefused):
        session.topup_invoiced("late", "lnbc", 100)


def test_a_snapshot_round_trips():
    session = active()
    session.start_request(uuid4(), 10, NOW, IDLE)
    again = Session.from_snapshot(session.to_snapshot())
    assert again.to_snapshot() == session.to_snapshot()


def test_an_owed_balance_is_claimed_for_exactly_its_amount_once_and_released_on_failure():
    session = active(deposit=100)
    with pytest.raises(RefundNotClaimable):
        session.claim_refund("h1", "lnbc", 100)  # live: nothing owed yet
    session.expire_if_idle(NOW + IDLE, IDLE)
    with pytest.raises(InvalidRefundInvoice):
        session.claim_refund("h1", "lnbc", 99)
    session.claim_refund("h1", "lnbc", 100)
    with pytest.raises(RefundNotClaimable):
        session.claim_refund("h2", "lnbc", 100)  # one claim at a time
    session.refund_failed("h1", "no route")
    session.claim_refund("h2", "lnbc", 100)
    session.refund_paid("h2")
    session.refund_paid("h2")  # reported twice: once
    paid = [e for e in session.pending() if type(e).__name__ == "SessionRefundPaid"]
    assert [e.amount_sats for e in paid] == [100]
    with pytest.raises(RefundNotClaimable):
        session.claim_refund("h3", "lnbc", 100)


def test_a_reservation_whose_process_died_is_released_after_its_lease_and_a_late_report_changes_nothing():
    session = active(deposit=200)
    started = session.start_request(uuid4(), 110, NOW, IDLE, timedelta(minutes=5))
    assert isinstance(started, Started)
    assert session.release_lapsed(NOW + timedelta(minutes=4)) == 0
    assert session.available_sats == 90
    assert session.release_lapsed(NOW + timedelta(minutes=5)) == 1
    assert (session.available_sats, session.balance_sats) == (200, 200)  # released, nothing debited
    assert session.settle_request(started.request_id, "complete", 10, 50, NOW) == 200
