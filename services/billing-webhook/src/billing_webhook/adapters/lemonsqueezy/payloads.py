"""What LemonSqueezy sends: a JSON:API document, ``{meta: {event_name, custom_data, test_mode,
webhook_id}, data: {type, id, attributes}}``, with the attributes we read per event.

A delivery is validated once, at receipt, with the model of its event, so that a delivery that was
recorded can always be processed: a malformed one is refused (400) while LemonSqueezy can still
retry, instead of being acknowledged and failing later. Unknown fields are ignored; ids may come as
JSON:API strings or as numbers (``variant_id: 1``) and are kept as strings. Money is whole cents:
a float or a string where cents belong is a validation error.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, Strict


def _id(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Id = Annotated[str, BeforeValidator(_id), Field(min_length=1, max_length=64)]
# Bounded so that no figure we pass on can overflow a bigint downstream (wallet-api sums them).
Cents = Annotated[int, Strict(), Field(ge=0, le=10**12)]
# ISO 4217: three ASCII letters (upper-cased here, so that no later step can change its length).
Currency = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$"), AfterValidator(str.upper)]

ORDER_EVENTS = frozenset({"order_created", "order_refunded"})
SUBSCRIPTION_EVENTS = frozenset(
    {
        "subscription_created",
        "subscription_updated",
        "subscription_cancelled",
        "subscription_resumed",
        "subscription_expired",
        "subscription_paused",
        "subscription_unpaused",
    }
)
INVOICE_EVENTS = frozenset({"subscription_payment_success", "subscription_payment_refunded"})
NEEDS_SESSION = frozenset({"order_created", "subscription_created"})
"""Events that start something of ours: they must name the checkout session they come from."""
KNOWN_EVENTS = (
    ORDER_EVENTS
    | SUBSCRIPTION_EVENTS
    | INVOICE_EVENTS
    | {
        "subscription_payment_failed",
        "subscription_payment_recovered",
        "license_key_created",
        "license_key_updated",
    }
)


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Meta(Model):
    event_name: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9_]+$")
    custom_data: dict[str, Any] | None = None
    test_mode: bool = False
    webhook_id: str | None = None

    @property
    def session_id(self) -> str | None:
        """``custom_data.session_id``, what our checkout put in ``checkout_data.custom``."""
        value = (self.custom_data or {}).get("session_id")
        return value if isinstance(value, str) and value else None

    @property
    def session_uuid(self) -> UUID | None:
        """The session id if it could name a session at all (sessions are uuids)."""
        try:
            return UUID(self.session_id) if self.session_id else None
        except ValueError:
            return None


class OrderItem(Model):
    product_id: Id | None = None
    variant_id: Id
    product_name: str | None = None
    variant_name: str | None = None
    price: Cents | None = None
    quantity: Annotated[int, Strict(), Field(ge=1, le=10_000)] = 1
    test_mode: bool = False


class OrderAttributes(Model):
    identifier: str | None = None
    order_number: int | None = None
    status: str = Field(min_length=1, max_length=32)
    currency: Currency
    total: Cents
    refunded: bool = False
    refunded_amount: Cents = 0
    first_order_item: OrderItem
    test_mode: bool = False


class SubscriptionAttributes(Model):
    order_id: Id | None = None
    product_id: Id | None = None
    variant_id: Id
    status: str = Field(min_length=1, max_length=32)
    cancelled: bool = False
    renews_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    updated_at: AwareDatetime
    test_mode: bool = False


class InvoiceAttributes(Model):
    subscription_id: Id
    billing_reason: str = Field(min_length=1, max_length=32)
    status: str = Field(min_length=1, max_length=32)
    currency: Currency
    total: Cents
    refunded: bool = False  # fully refunded
    refunded_amount: Cents = 0  # cumulative, as an order's
    test_mode: bool = False

    @property
    def refunded_cents(self) -> int:
        """What was refunded so far: all of it once ``refunded``, whatever ``refunded_amount`` says."""
        return self.total if self.refunded else self.refunded_amount


class Resource(Model):
    """Any JSON:API resource, for the events we only record."""

    type: str = Field(min_length=1, max_length=100)
    id: Id
    attributes: dict[str, Any]


class Order(Resource):
    type: Literal["orders"]
    attributes: OrderAttributes  # type: ignore[assignment]


class SubscriptionResource(Resource):
    type: Literal["subscriptions"]
    attributes: SubscriptionAttributes  # type: ignore[assignment]


class SubscriptionInvoice(Resource):
    type: Literal["subscription-invoices"]
    attributes: InvoiceAttributes  # type: ignore[assignment]


R = TypeVar("R", bound=Resource)


class Document(Model, Generic[R]):
    meta: Meta
    data: R


MODELS: dict[str, type[Document[Any]]] = {
    **{name: Document[Order] for name in ORDER_EVENTS},
    **{name: Document[SubscriptionResource] for name in SUBSCRIPTION_EVENTS},
    **{name: Document[SubscriptionInvoice] for name in INVOICE_EVENTS},
}


def model_for(payload: Any) -> type[Document[Any]]:
    """The model of the delivery's event (by ``meta.event_name``); the generic one for the others."""
    meta = payload.get("meta") if isinstance(payload, dict) else None
    event_name = meta.get("event_name") if isinstance(meta, dict) else None
    return MODELS.get(event_name, Document[Resource]) if isinstance(event_name, str) else Document[Resource]


def parse(payload: Any) -> Document[Any]:
    """The delivery validated with the model of its event; raises pydantic's ``ValidationError``."""
    return model_for(payload).model_validate(payload)


def metric_label(event_name: str) -> str:
    """Event names as metric labels: LemonSqueezy's, or ``other`` (bounded cardinality)."""
    return event_name if event_name in KNOWN_EVENTS else "other"


def without_nul(value: Any) -> Any:
    """The document as we can store it: PostgreSQL's jsonb holds no NUL character, and a buyer may
    type one into a name. The delivery's id stays the hash of the raw bytes it came in."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    return value


def ordering_key(payload: Any) -> str:
    """What a delivery must be processed in order with: the deliveries of one order (created, then
    refunded), or of one subscription (its changes and its invoices), one after another in the
    order they were received; deliveries with different keys touch different aggregates and may be
    processed at the same time. Read from the stored document, which was validated at receipt."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        return "unknown"
    kind, attributes = data.get("type"), data.get("attributes")
    if kind == "subscription-invoices" and isinstance(attributes, dict) and "subscription_id" in attributes:
        return f"subscriptions:{attributes['subscription_id']}"
    return f"{kind}:{data.get('id')}"
