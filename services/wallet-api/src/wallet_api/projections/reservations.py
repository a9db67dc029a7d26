"""Every reservation and its outcome: retries find theirs by reference id, expiry finds the due.

A fold (``writes``): one write per reservation. One made in the batch is inserted as the batch's
later events left it (extended, captured, released); every other is updated with what the batch's
events set last, a column no event of the batch set keeping its value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lf_eventstore import RecordedEvent
from lf_pg import Statement
from lf_projections import Projection
from lf_projections.rows import insert_rows, update_rows

TYPES = (
    "CreditsReserved",
    "ReservationExtended",
    "ReservationCaptured",
    "ExpiredReservationCharged",
    "ReservationReleased",
)

SET = [
    ("expires_at", "timestamptz"),
    ("status", "text"),
    ("captured", "bigint"),
    ("overrun", "bigint"),
    ("uncollected", "bigint"),
    ("closed_at", "timestamptz"),
]
"""The columns events after the reservation set; none of them ever sets one to null."""
NEW = [
    ("reservation_id", "uuid"),
    ("lenser_id", "uuid"),
    ("reference_id", "text"),
    ("amount", "bigint"),
    ("max_expires_at", "timestamptz"),
    ("created_at", "timestamptz"),
]


def sets(event: RecordedEvent) -> dict[str, Any]:
    """The columns ``event`` sets on its reservation's row."""
    d = event.data
    match event.type:
        case "CreditsReserved":
            expires_at = datetime.fromisoformat(d["expires_at"])
            # Recorded before reservations had a hard deadline: the deadline is the expiry (as the
            # aggregate has it).
            deadline = datetime.fromisoformat(d["max_expires_at"]) if d.get("max_expires_at") else expires_at
            return {
                "reservation_id": d["reservation_id"],
                "lenser_id": d["lenser_id"],
                "reference_id": d["reference_id"],
                "amount": d["amount"],
                "max_expires_at": deadline,
                "created_at": event.recorded_at,
                "expires_at": expires_at,
                "status": "reserved",
            }
        case "ReservationExtended":
            return {"expires_at": datetime.fromisoformat(d["expires_at"])}
        case "ReservationCaptured":
            return {
                "status": "captured",
                "captured": d["captured"],
                "overrun": d["overrun"],
                "closed_at": event.recorded_at,
            }
        case "ExpiredReservationCharged":
            return {
                "status": "captured",
                "captured": d["charged"],
                "overrun": d["overrun"],
                "uncollected": d["uncollected"],
                "closed_at": event.recorded_at,
            }
        case "ReservationReleased":
            status = "expired" if d["reason"] == "expired" else "released"
            return {"status": status, "closed_at": event.recorded_at}
    return {}


def fold(events: list[RecordedEvent]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(reservations made in the batch, changes to the others), each by reservation id, in the order
    the batch first met them."""
    made: dict[str, dict[str, Any]] = {}
    changed: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.type not in TYPES:
            continue
        rid = str(event.data["reservation_id"])
        if event.type == "CreditsReserved":
            made[rid] = sets(event)
        else:
            (made if rid in made else changed).setdefault(rid, {}).update(sets(event))
    return made, changed


def writes(events: list[RecordedEvent]) -> list[Statement]:
    made, changed = fold(events)
    inserted = [tuple(row.get(name) for name, _ in (*NEW, *SET)) for row in made.values()]
    updated = [(rid, *(row.get(name) for name, _ in SET)) for rid, row in changed.items()]
    return [
        *insert_rows("reservations", [*NEW, *SET], inserted),
        *update_rows(
            "reservations",
            [("reservation_id", "uuid")],
            SET,
            updated,
            assign={name: f"coalesce(r.{name}, t.{name})" for name, _ in SET},
        ),
    ]


PROJECTION = Projection(name="reservations", tables=("reservations",), writes=writes, write_types=TYPES)
