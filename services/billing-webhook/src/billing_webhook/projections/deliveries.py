"""Every delivery and where its processing stands: what ``deliveries list`` shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lf_eventstore import RecordedEvent
from lf_pg import Statement
from lf_projections import Projection


@dataclass
class _Row:
    """What one batch of events does to one delivery's row, folded (``writes`` may get several
    events of one delivery: a rebuild; its statements must not touch a row twice)."""

    new: dict[str, Any] | None = None  # the row to insert, if the batch received the delivery
    status: str = "pending"
    result: tuple[str | None, str | None] | None = None  # (outcome, detail), if the batch set it
    tries: int = 0
    updated_at: datetime | None = None


def _fold(events: list[RecordedEvent]) -> dict[str, _Row]:
    rows: dict[str, _Row] = {}
    for event in events:
        d = event.data
        row = rows.setdefault(d["delivery_key"], _Row())
        row.updated_at = event.recorded_at
        match event.type:
            case "DeliveryReceived":
                data = d["payload"].get("data") or {}
                row.new = {
                    "event_name": d["event_name"],
                    "resource_type": data.get("type"),
                    "resource_id": str(data.get("id")),
                    "test_mode": bool(d["payload"]["meta"].get("test_mode", False)),
                    "received_at": event.recorded_at,
                }
                row.status = "pending"
            case "DeliveryProcessed":
                row.status, row.result, row.tries = "processed", (d["outcome"], d["detail"]), row.tries + 1
            case "DeliveryFailed":
                row.status, row.result, row.tries = "failed", (None, d["error"]), row.tries + 1
            case "DeliveryReplayRequested":
                row.status = "pending"
    return rows


def writes(events: list[RecordedEvent]) -> list[Statement]:
    """At most one INSERT (the deliveries received) and one UPDATE (the others), composed into the
    command's write: recording or processing a delivery costs its read model no round trip."""
    rows = _fold([e for e in events if e.type in TYPES])
    inserted = {key: row for key, row in rows.items() if row.new is not None}
    updated = {key: row for key, row in rows.items() if row.new is None}
    statements = []
    if inserted:
        statements.append(
            Statement(
                "INSERT INTO deliveries (delivery_id, event_name, resource_type, resource_id, test_mode,"
                " status, outcome, detail, attempts, received_at, updated_at)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[],"
                " $6::text[], $7::text[], $8::text[], $9::int[], $10::timestamptz[], $11::timestamptz[])"
                # Two copies of one body recorded at once: the loser's append finds the stream taken
                # and raises ConcurrencyError (its transaction rolls back, it retries as a duplicate);
                # its row must not fail the statement first.
                " ON CONFLICT (delivery_id) DO NOTHING",
                (
                    list(inserted),
                    *(
                        [row.new[field] for row in inserted.values()]  # type: ignore[index]
                        for field in ("event_name", "resource_type", "resource_id", "test_mode")
                    ),
                    [row.status for row in inserted.values()],
                    [row.result[0] if row.result else None for row in inserted.values()],
                    [row.result[1] if row.result else None for row in inserted.values()],
                    [row.tries for row in inserted.values()],
                    [row.new["received_at"] for row in inserted.values()],  # type: ignore[index]
                    [row.updated_at for row in inserted.values()],
                ),
            )
        )
    if updated:
        statements.append(
            Statement(
                "UPDATE deliveries d SET status = u.status,"
                " outcome = CASE WHEN u.set_result THEN u.outcome ELSE d.outcome END,"
                " detail = CASE WHEN u.set_result THEN u.detail ELSE d.detail END,"
                " attempts = d.attempts + u.tries, updated_at = u.updated_at"
                " FROM unnest($1::text[], $2::text[], $3::bool[], $4::text[], $5::text[], $6::int[],"
                " $7::timestamptz[])"
                " AS u (delivery_id, status, set_result, outcome, detail, tries, updated_at)"
                " WHERE d.delivery_id = u.delivery_id",
                (
                    list(updated),
                    [row.status for row in updated.values()],
                    [row.result is not None for row in updated.values()],
                    [row.result[0] if row.result else None for row in updated.values()],
                    [row.result[1] if row.result else None for row in updated.values()],
                    [row.tries for row in updated.values()],
                    [row.updated_at for row in updated.values()],
                ),
            )
        )
    return statements


TYPES = ("DeliveryReceived", "DeliveryProcessed", "DeliveryFailed", "DeliveryReplayRequested")

PROJECTION = Projection(name="deliveries", tables=("deliveries",), writes=writes, write_types=TYPES)
