"""The subscription aggregate's rules, without any I/O."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from billing_webhook.domain.events import SubscriptionInvoicePaid, SubscriptionInvoiceRefunded
from billing_webhook.domain.subscription import Invoice, Subscription, SubscriptionState

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def state(status: str, hours: int, variant: str = "v-1") -> SubscriptionState:
    return SubscriptionState(
        variant, "p-1", status, status == "cancelled", None, None, T0 + timedelta(hours=hours)
    )


def invoice(invoice_id: str) -> Invoice:
    return Invoice(invoice_id, 900, "USD", False)


def test_an_older_state_never_replaces_a_newer_one_but_the_owner_is_kept_once_known():
    subscription = Subscription()
    lenser = uuid4()
    subscription.observe(
        "s-1", state("cancelled", 2), lenser_id=None, trigger="subscription_cancelled", at=T0
    )
    older = subscription.observe(
        "s-1", state("active", 1), lenser_id=lenser, trigger="subscription_created", at=T0
    )
    assert older.kind == "applied"  # it named the owner
    assert (subscription.state.status, subscription.lenser_id) == ("cancelled", lenser)
    stale = subscription.observe(
        "s-1", state("active", 1), lenser_id=lenser, trigger="subscription_updated", at=T0
    )
    assert stale.kind == "unchanged"


def test_each_invoice_is_credited_once_with_the_plans_credits():
    subscription = Subscription()
    subscription.observe("s-1", state("active", 0), lenser_id=uuid4(), trigger="subscription_created", at=T0)
    outcomes = [
        subscription.pay_invoice("s-1", invoice(i), credits=1000, at=T0).kind for i in ("1", "1", "2")
    ]
    assert outcomes == ["applied", "unchanged", "applied"]
    assert [e.credits for e in subscription.pending() if isinstance(e, SubscriptionInvoicePaid)] == [
        1000,
        1000,
    ]


def test_an_invoice_before_its_subscription_waits_and_is_credited_once_it_is_known():
    subscription = Subscription()
    assert subscription.pay_invoice("s-1", invoice("1"), credits=None, at=T0).kind == "deferred"
    assert subscription.pay_invoice("s-1", invoice("1"), credits=None, at=T0).kind == "deferred"
    subscription.observe("s-1", state("active", 0), lenser_id=uuid4(), trigger="subscription_created", at=T0)
    assert subscription.pay_awaiting_invoices(1000, at=T0) == 1
    assert subscription.pay_invoice("s-1", invoice("1"), credits=1000, at=T0).kind == "unchanged"
    restored = Subscription.from_snapshot(subscription.to_snapshot())
    assert (restored.invoices_paid, restored.invoices_awaiting, restored.state) == (
        {"1"},
        {},
        subscription.state,
    )


def refunded_totals(subscription: Subscription) -> list[int]:
    return [
        e.credits_refunded_total for e in subscription.pending() if isinstance(e, SubscriptionInvoiceRefunded)
    ]


def test_a_refunded_renewal_takes_back_its_credits_cumulatively_never_more_than_granted():
    subscription = Subscription()
    subscription.observe("s-1", state("active", 0), lenser_id=uuid4(), trigger="subscription_created", at=T0)
    subscription.pay_invoice("s-1", invoice("1"), credits=1000, at=T0)
    outcomes = [
        subscription.refund_invoice("s-1", "1", cents, 900, at=T0).kind for cents in (300, 300, 900, 950)
    ]
    assert outcomes == ["applied", "unchanged", "applied", "unchanged"]
    assert refunded_totals(subscription) == [333, 1000]


def test_a_refund_before_its_renewal_was_credited_is_applied_once_it_is():
    subscription = Subscription()
    subscription.observe("s-1", state("active", 0), lenser_id=uuid4(), trigger="subscription_created", at=T0)
    assert subscription.refund_invoice("s-1", "1", 900, 900, at=T0).kind == "deferred"
    subscription.pay_invoice("s-1", invoice("1"), credits=1000, at=T0)
    assert refunded_totals(subscription) == [1000]
    restored = Subscription.from_snapshot(subscription.to_snapshot())
    assert (restored.invoice_refunded, restored.refunds_awaiting) == ({"1": 1000}, {})
