"""Credits that came from outside, keyed by order id or grant key: what makes them idempotent.
Paid orders that were refused (not credited) are kept beside them, one row per order.

A fold (``writes``): a deposit made in the batch is inserted with the batch's later reversals of it
already summed in; any other deposit a reversal names is updated once by the sum.
"""

from __future__ import annotations

from typing import Any

from lf_eventstore import RecordedEvent
from lf_pg import Statement
from lf_projections import Projection
from lf_projections.rows import insert_rows, update_rows

TYPES = ("CreditsDeposited", "PurchaseReversed", "PurchaseRefused")

KEY = [("lenser_id", "uuid"), ("source", "text"), ("reference_id", "text")]
REFUSED = [
    ("lenser_id", "uuid"),
    ("order_id", "text"),
    ("credits", "bigint"),
    ("reason", "text"),
    ("refused_at", "timestamptz"),
]


def asked_back(event: RecordedEvent) -> int:
    # What was asked back counts, taken or not: a later, larger refund asks only for the difference.
    return event.data["amount"] + event.data["shortfall"]


def writes(events: list[RecordedEvent]) -> list[Statement]:
    made: dict[tuple[str, str, str], list[Any]] = {}  # [lenser_id, source, reference_id, amount, reversed]
    reversed_: dict[tuple[str, str, str], list[Any]] = {}  # [lenser_id, source, reference_id, reversed]
    refused: list[tuple[Any, ...]] = []
    for event in events:
        d = event.data
        match event.type:
            case "CreditsDeposited":
                made[(str(d["lenser_id"]), d["source"], d["reference_id"])] = [
                    d["lenser_id"], d["source"], d["reference_id"], d["amount"], 0
                ]  # fmt: skip
            case "PurchaseReversed":
                key = (str(d["lenser_id"]), "purchase", d["order_id"])
                later = [d["lenser_id"], "purchase", d["order_id"], 0]
                row = made.get(key) or reversed_.setdefault(key, later)
                row[-1] += asked_back(event)  # the reversed column, last in both
            case "PurchaseRefused":
                refused.append((d["lenser_id"], d["order_id"], d["credits"], d["reason"], event.recorded_at))
    return [
        *insert_rows("deposits", [*KEY, ("amount", "bigint"), ("reversed", "bigint")], list(made.values())),
        *update_rows(
            "deposits",
            KEY,
            [("reversed", "bigint")],
            list(reversed_.values()),
            assign={"reversed": "t.reversed + r.reversed"},
        ),
        *insert_rows("refused_purchases", REFUSED, refused),
    ]


PROJECTION = Projection(
    name="deposits", tables=("deposits", "refused_purchases"), writes=writes, write_types=TYPES
)
