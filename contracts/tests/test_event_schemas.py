from datetime import UTC, datetime
from uuid import uuid4

from lf_contracts.events import CreditsPurchasedV1, model_for
from lf_contracts.export import SCHEMAS, rendered


def test_the_exported_json_schemas_match_the_models():
    on_disk = {path.name: path.read_text() for path in SCHEMAS.glob("*.json")}
    assert on_disk == rendered(), "stale: run `uv run python -m lf_contracts.export`"


def test_events_travel_in_camel_case_and_consumers_ignore_unknown_fields():
    event = CreditsPurchasedV1(
        occurred_at=datetime(2026, 11, 22, tzinfo=UTC),
        order_id="o-1",
        lenser_id=uuid4(),
        credits=100,
        amount_cents=500,
        currency="USD",
    )
    wire = event.model_dump(by_alias=True, mode="json")
    assert {"orderId", "lenserId", "amountCents", "occurredAt"} <= wire.keys()
    parsed = model_for("billing.credits_purchased.v1").model_validate({**wire, "addedLater": True})
    assert parsed == event
