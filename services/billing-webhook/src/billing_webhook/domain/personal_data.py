"""Buyers' personal data in LemonSqueezy deliveries, kept apart from the log.

The log is forever (no event is ever changed or deleted); a buyer's email, name, address, card
digits and signed customer-portal links must not be. So a delivery is recorded without them
(``DeliveryReceived`` keeps every financial fact: ids, amounts, currency, status, variant, test
mode), and what ``split`` takes out is kept beside it, in ``delivery_personal_data``, only for the
retention (``DELIVERY_PERSONAL_DATA_RETENTION_DAYS``: long enough to answer a dispute), then deleted
by the service. Nothing that processes a delivery reads them. The delivery id stays the hash of the
raw body, so a resend is still recognised.
"""

from __future__ import annotations

from typing import Any

# Attributes of LemonSqueezy's orders, subscriptions, subscription invoices, customers and license
# keys that name, locate or identify a person (or unlock their customer portal / license).
PERSONAL_ATTRIBUTES = frozenset(
    {
        "user_name",
        "user_email",
        "customer_name",
        "customer_email",
        "name",
        "email",
        "city",
        "region",
        "country",
        "billing_address",
        "tax_number",
        "card_brand",
        "card_last_four",
        "urls",
        "key",
        "key_short",
    }
)


def split(payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the document without personal data, the personal data it had: attribute -> value)."""
    data = payload.get("data")
    attributes = data.get("attributes") if isinstance(data, dict) else None
    if not isinstance(attributes, dict):
        return payload, {}
    personal = {k: v for k, v in attributes.items() if k in PERSONAL_ATTRIBUTES}
    if not personal:
        return payload, {}
    kept = {k: v for k, v in attributes.items() if k not in PERSONAL_ATTRIBUTES}
    return {**payload, "data": {**data, "attributes": kept}}, personal
