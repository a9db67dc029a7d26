"""The inline read models as pure folds: events in, statements out, one write per row whatever the
batch holds (a command's events, a group-committed batch, a rebuild's thousand events)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from lf_eventstore import RecordedEvent
from wallet_api.projections import balances, deposits, reservations

T0 = datetime(2026, 12, 1, tzinfo=UTC)
A = "00000000-0000-0000-0000-00000000000a"
B = "00000000-0000-0000-0000-00000000000b"


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(type_: str, seconds: int, **data) -> RecordedEvent:
    return RecordedEvent(0, 0, "wallet-x", 0, uuid4(), type_, data, {}, at(seconds))


def only(statements, verb: str, table: str):
    """The one statement of ``statements`` that ``verb``s ``table``; asserts there is exactly one."""
    found = [s for s in statements if s.sql.startswith(f"{verb} {table} ")]
    assert len(found) == 1, [s.sql for s in statements]
    return found[0]


def rows(statement) -> list[tuple]:
    return list(zip(*statement.args, strict=True))


# --- balances ---------------------------------------------------------------------------------


def test_a_wallet_opened_in_the_batch_is_inserted_with_all_its_later_events_summed_in():
    statements = balances.writes(
        [
            event("WalletOpened", 1, lenser_id=A),
            event("CreditsDeposited", 2, lenser_id=A, amount=100, source="grant", reference_id="g"),
            event("CreditsReserved", 3, lenser_id=A, amount=30),
            event("ReservationCaptured", 4, lenser_id=A, reserved=30, captured=20, released=10, overrun=0),
            event("SpendingLimitsSet", 5, lenser_id=A, daily=50, monthly=None),
        ]
    )
    assert len(statements) == 1
    insert = only(statements, "INSERT INTO", "balances")
    # lenser, balance, reserved, lifetime deposits, lifetime spent, frozen, limits, updated, opened
    assert rows(insert) == [(A, 80, 0, 100, 20, False, 50, None, at(5), at(1))]


def test_other_wallets_are_updated_once_each_by_their_summed_deltas_in_key_order():
    statements = balances.writes(
        [
            event("CreditsReserved", 1, lenser_id=B, amount=5),
            event("CreditsReserved", 2, lenser_id=A, amount=7),
            event("ReservationReleased", 3, lenser_id=B, amount=5, reason="released"),
            event("ExpiredReservationCharged", 4, lenser_id=A, charged=3, uncollected=1, overrun=0),
            event("PurchaseReversed", 5, lenser_id=A, amount=2, shortfall=1),
            event("WalletFrozen", 6, lenser_id=B),
            event("WalletUnfrozen", 7, lenser_id=B),
        ]
    )
    assert len(statements) == 1
    update = only(statements, "UPDATE", "balances")
    assert "balance = t.balance + r.balance" in update.sql
    # lenser, balance, reserved, deposits, spent, frozen, daily, monthly, updated, limits set
    assert rows(update) == [
        (A, -5, 7, 0, 3, None, None, None, at(5), False),  # frozen untouched: None keeps the column
        (B, 0, 0, 0, 0, False, None, None, at(7), False),  # the last of frozen/unfrozen wins
    ]


def test_limits_cleared_to_none_are_told_apart_from_limits_not_set():
    update = only(
        balances.writes([event("SpendingLimitsSet", 1, lenser_id=A, daily=None, monthly=None)]),
        "UPDATE",
        "balances",
    )
    assert rows(update) == [(A, 0, 0, 0, 0, None, None, None, at(1), True)]


def test_events_that_do_not_touch_a_balance_write_nothing():
    assert (
        balances.writes(
            [event("RefundAwaitingPurchase", 1, lenser_id=A, order_id="o", credits_refunded_total=1)]
        )
        == []
    )
    assert balances.writes([]) == []


# --- reservations -----------------------------------------------------------------------------


def reserved(rid: UUID, seconds: int, **extra) -> RecordedEvent:
    return event(
        "CreditsReserved",
        seconds,
        lenser_id=A,
        reservation_id=str(rid),
        reference_id=f"ref-{rid}",
        amount=10,
        expires_at=at(seconds + 300).isoformat(),
        **extra,
    )


def by_column(statement, columns) -> list[dict]:
    names = [name for name, _ in columns]
    return [dict(zip(names, row, strict=True)) for row in rows(statement)]


def test_a_reservation_made_and_closed_in_the_batch_is_inserted_closed():
    rid = uuid4()
    statements = reservations.writes(
        [
            reserved(rid, 1, max_expires_at=at(900).isoformat()),
            event(
                "ReservationExtended",
                2,
                reservation_id=str(rid),
                reference_id="r",
                expires_at=at(600).isoformat(),
            ),
            event(
                "ReservationCaptured",
                3,
                reservation_id=str(rid),
                reference_id="r",
                reserved=10,
                captured=4,
                released=6,
                overrun=1,
            ),
        ]
    )
    assert len(statements) == 1
    [row] = by_column(only(statements, "INSERT INTO", "reservations"), [*reservations.NEW, *reservations.SET])
    assert row == {
        "reservation_id": str(rid),
        "lenser_id": A,
        "reference_id": f"ref-{rid}",
        "amount": 10,
        "max_expires_at": at(900),
        "created_at": at(1),
        "expires_at": at(600),
        "status": "captured",
        "captured": 4,
        "overrun": 1,
        "uncollected": None,
        "closed_at": at(3),
    }


def test_a_reservation_recorded_without_a_deadline_takes_its_expiry_as_the_deadline():
    rid = uuid4()
    [row] = by_column(reservations.writes([reserved(rid, 1)])[0], [*reservations.NEW, *reservations.SET])
    assert row["max_expires_at"] == row["expires_at"] == at(301)
    assert row["status"] == "reserved" and row["closed_at"] is None


def test_earlier_reservations_are_updated_with_only_what_the_batch_set_expired_told_from_released():
    expired, failed, charged, extended = sorted((uuid4() for _ in range(4)), key=str)
    statements = reservations.writes(
        [
            event(
                "ReservationReleased",
                1,
                reservation_id=str(expired),
                reference_id="r",
                amount=10,
                reason="expired",
            ),
            event(
                "ReservationReleased",
                2,
                reservation_id=str(failed),
                reference_id="r",
                amount=10,
                reason="execution_failed",
            ),
            event(
                "ExpiredReservationCharged",
                3,
                reservation_id=str(charged),
                reference_id="r",
                reserved=10,
                charged=8,
                uncollected=2,
                overrun=0,
            ),
            event(
                "ReservationExtended",
                4,
                reservation_id=str(extended),
                reference_id="r",
                expires_at=at(700).isoformat(),
            ),
        ]
    )
    assert len(statements) == 1
    update = only(statements, "UPDATE", "reservations")
    assert "status = coalesce(r.status, t.status)" in update.sql
    updated = by_column(update, [("reservation_id", "uuid"), *reservations.SET])
    assert [row["reservation_id"] for row in updated] == [
        str(expired),
        str(failed),
        str(charged),
        str(extended),
    ]
    assert [(row["status"], row["closed_at"]) for row in updated] == [
        ("expired", at(1)),
        ("released", at(2)),
        ("captured", at(3)),
        (None, None),
    ]
    assert (updated[2]["captured"], updated[2]["uncollected"], updated[2]["overrun"]) == (8, 2, 0)
    assert updated[3]["expires_at"] == at(700) and updated[0]["expires_at"] is None


# --- deposits ---------------------------------------------------------------------------------


def test_a_deposit_reversed_in_its_own_batch_is_inserted_with_what_was_asked_back():
    statements = deposits.writes(
        [
            event("CreditsDeposited", 1, lenser_id=A, amount=100, source="purchase", reference_id="o-1"),
            event("PurchaseReversed", 2, lenser_id=A, order_id="o-1", amount=30, shortfall=5),
        ]
    )
    assert len(statements) == 1
    assert rows(only(statements, "INSERT INTO", "deposits")) == [(A, "purchase", "o-1", 100, 35)]


def test_reversals_of_earlier_deposits_sum_into_one_update_per_order_and_refusals_are_inserted():
    statements = deposits.writes(
        [
            event("PurchaseReversed", 1, lenser_id=B, order_id="o-2", amount=10, shortfall=0),
            event("PurchaseReversed", 2, lenser_id=A, order_id="o-1", amount=30, shortfall=5),
            event("PurchaseReversed", 3, lenser_id=B, order_id="o-2", amount=20, shortfall=2),
            event("PurchaseRefused", 4, lenser_id=A, order_id="o-3", credits=50, reason="test_mode"),
        ]
    )
    assert len(statements) == 2
    update = only(statements, "UPDATE", "deposits")
    assert "reversed = t.reversed + r.reversed" in update.sql
    assert rows(update) == [(A, "purchase", "o-1", 35), (B, "purchase", "o-2", 32)]
    assert rows(only(statements, "INSERT INTO", "refused_purchases")) == [(A, "o-3", 50, "test_mode", at(4))]


def test_a_grant_is_never_the_deposit_a_reversal_names():
    statements = deposits.writes(
        [
            event("CreditsDeposited", 1, lenser_id=A, amount=100, source="grant", reference_id="o-1"),
            event("PurchaseReversed", 2, lenser_id=A, order_id="o-1", amount=30, shortfall=0),
        ]
    )
    assert rows(only(statements, "INSERT INTO", "deposits")) == [(A, "grant", "o-1", 100, 0)]
    assert rows(only(statements, "UPDATE", "deposits")) == [(A, "purchase", "o-1", 30)]
