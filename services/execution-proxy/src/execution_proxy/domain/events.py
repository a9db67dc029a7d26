"""What happened in execution-proxy. Stored in the log under the class name; never changed once stored.

Each event carries its aggregate's key and the figures a reader needs, so projections and the relay
are simple functions of single events. Amounts of USD are exact decimals (strings in the log).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from lf_eventstore import DomainEvent

# --- the catalogue (one stream: catalogue-main) ----------------------------------------------------


class ModelDefined(DomainEvent):
    key: str
    provider: str
    provider_model: str
    display_name: str
    unit_type: str
    max_output_tokens: int
    active: bool
    at: datetime


class ModelChanged(ModelDefined):
    """The model's whole definition after the change."""


class PriceSet(DomainEvent):
    """A list price of ``key`` in effect from ``effective_from`` (a later one supersedes it)."""

    key: str
    effective_from: datetime
    input_per_1k: Decimal
    output_per_1k: Decimal
    per_unit: Decimal
    cache_read_per_1k: Decimal | None
    cache_write_per_1k: Decimal | None
    at: datetime


class MarginPolicySet(DomainEvent):
    """``scope`` is ``global`` or a model key (a model's own policy beats the global one)."""

    scope: str
    markup_percent: Decimal
    fixed_fee_usd: Decimal
    rounding: str
    min_charge_credits: int
    max_charge_credits: int | None
    at: datetime


class PriceQuoted(DomainEvent):
    """What one model costs now, after a change that moved it (published to the wallet's /pricing)."""

    key: str
    name: str
    provider: str
    unit_type: str
    sample_cost_usd: Decimal
    sample_cost_credits: int
    active: bool
    at: datetime


# --- executions (stream execution-<uuid>) ------------------------------------------------------


class ExecutionStarted(DomainEvent):
    """``funding``: platform_credit | user_byok_cloud | sponsored | service. ``payer_id`` is the
    wallet charged (the lenser's, or the sponsor's), None when nothing is charged."""

    execution_id: UUID
    lenser_id: UUID | None
    funding: str
    payer_id: UUID | None
    kind: str  # chat | image
    provider: str
    model: str
    streamed: bool
    reference_id: str | None
    reservation_id: UUID | None
    reserved_credits: int
    key_id: UUID | None
    started_at: datetime


class ExecutionSucceeded(DomainEvent):
    """``usage_source``: provider (it stated every count), counted (it stated none: we counted what
    reached us), partial (some of each). ``overrun_credits``: cost above the reservation, not charged.
    ``cancelled``: its caller cancelled it mid-way (``POST /internal/executions/cancel``), and it was
    charged for what it had used by then (added later: older events read as False). ``cut_short``:
    the provider did not finish its answer (its caller cancelled it, its client left, the provider
    broke off, or the server stopped mid-way): the content is the beginning of an answer, not an
    answer, charged for what was produced (added later: older events read as their ``cancelled``)."""

    execution_id: UUID
    payer_id: UUID | None
    reservation_id: UUID | None
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    units: int
    usage_source: str
    cost_usd: Decimal
    credits_charged: int
    overrun_credits: int
    client_disconnected: bool
    latency_ms: int
    finished_at: datetime
    cancelled: bool = False
    cut_short: bool = False


class ExecutionFailed(DomainEvent):
    execution_id: UUID
    payer_id: UUID | None
    reservation_id: UUID | None
    code: str
    reason: str
    finished_at: datetime


# --- BYOK keys (stream byok-key-<uuid>) --------------------------------------------------------
# The secret is never in an event (the log is forever): only its last 4 characters, as listed.


class KeyStored(DomainEvent):
    key_id: UUID
    lenser_id: UUID
    provider: str
    label: str | None
    suffix: str
    at: datetime


class KeyRevoked(DomainEvent):
    """Its material was deleted in the same transaction: the key can never be decrypted again."""

    key_id: UUID
    lenser_id: UUID
    at: datetime
