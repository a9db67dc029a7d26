"""The catalogue: which models can run, at what list price, with what margin. One aggregate (a few
dozen models change rarely), so a change that moves many prices (the global margin) is one decision.

A model is found by its key and provider; an inactive one is not found. Prices are effective-dated:
the newest price whose ``effective_from`` has come is the one in force. A model's own margin policy
beats the global one. Every change records a ``PriceQuoted`` for each model whose price it moved,
which the relay publishes (``execution.model_price_changed.v1``) for the wallet's /pricing.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Self

from pydantic import TypeAdapter

from execution_proxy.domain import errors
from execution_proxy.domain.events import MarginPolicySet, ModelChanged, ModelDefined, PriceQuoted, PriceSet
from execution_proxy.domain.pricing import MarginPolicy, Price, Quote, Rounding, UnitType
from lf_eventstore import Aggregate, by_name

GLOBAL = "global"
PROVIDERS = ("anthropic", "openai", "gemini", "fal", "ollama", "local")


@dataclass(frozen=True, slots=True)
class Model:
    key: str
    provider: str
    provider_model: str
    display_name: str
    unit_type: UnitType
    max_output_tokens: int
    active: bool = True


_PRICES = TypeAdapter(dict[str, list[Price]])
_POLICIES = TypeAdapter(dict[str, MarginPolicy])
_MODELS = TypeAdapter(dict[str, Model])


class Catalogue(Aggregate):
    event_types = by_name(ModelDefined, ModelChanged, PriceSet, MarginPolicySet, PriceQuoted)

    def __init__(self) -> None:
        super().__init__()
        self.models: dict[str, Model] = {}
        self.prices: dict[str, list[Price]] = {}
        self.policies: dict[str, MarginPolicy] = {}

    # --- reading ----------------------------------------------------------------------------

    def model(self, key: str, provider: str | None = None) -> Model:
        """The active model ``key`` (of ``provider`` when given), else ``ModelNotFound``."""
        model = self.models.get(key)
        if model is None or not model.active or (provider is not None and model.provider != provider):
            raise errors.ModelNotFound(key)
        return model

    def price_at(self, key: str, at: datetime) -> Price:
        in_force = [price for price in self.prices.get(key, ()) if price.effective_from <= at]
        if not in_force:
            raise errors.PricingNotFound(key)
        return in_force[-1]

    def policy_for(self, key: str) -> MarginPolicy:
        return self.policies.get(key) or self.policies.get(GLOBAL) or MarginPolicy()

    def quote(self, key: str, at: datetime, credits_per_usd: int) -> Quote:
        model = self.models[key]
        return Quote(model.unit_type, self.price_at(key, at), self.policy_for(key), credits_per_usd)

    # --- changing ---------------------------------------------------------------------------

    def put_model(self, model: Model, *, at: datetime, credits_per_usd: int) -> bool:
        """Define or change a model; returns whether anything changed."""
        if model.provider not in PROVIDERS:
            raise errors.InvalidCatalogueChange(f"unknown provider {model.provider!r}")
        if model.max_output_tokens < 1 or not model.display_name.strip() or not model.provider_model:
            raise errors.InvalidCatalogueChange("a model has a name, a provider model and an output limit")
        existing = self.models.get(model.key)
        if existing == model:
            return False
        if existing is not None and (existing.provider, existing.unit_type) != (
            model.provider,
            model.unit_type,
        ):
            # Prices and reservations already issued assume them; a new key is a new model.
            raise errors.InvalidCatalogueChange("a model's provider and unit type never change")
        kind = ModelDefined if existing is None else ModelChanged
        self._record(kind(**asdict(model), at=at))
        self._quote((model.key,), at=at, credits_per_usd=credits_per_usd)
        return True

    def set_price(self, key: str, price: Price, *, at: datetime, credits_per_usd: int) -> None:
        if key not in self.models:
            raise errors.ModelNotFound(key)
        amounts = (
            price.input_per_1k,
            price.output_per_1k,
            price.per_unit,
            price.cache_read,
            price.cache_write,
        )
        if any(amount < 0 for amount in amounts):
            raise errors.InvalidCatalogueChange("a price is zero or more")
        self._record(PriceSet(key=key, **_fields(price), at=at))
        self._quote((key,), at=at, credits_per_usd=credits_per_usd)

    def set_policy(self, scope: str, policy: MarginPolicy, *, at: datetime, credits_per_usd: int) -> None:
        if scope != GLOBAL and scope not in self.models:
            raise errors.ModelNotFound(scope)
        if policy.min_charge_credits < 0 or (
            policy.max_charge_credits is not None and policy.max_charge_credits < policy.min_charge_credits
        ):
            raise errors.InvalidCatalogueChange("a charge's minimum is zero or more and at most its maximum")
        self._record(MarginPolicySet(scope=scope, **_fields(policy), at=at))
        moved = tuple(self.models) if scope == GLOBAL else (scope,)
        self._quote(moved, at=at, credits_per_usd=credits_per_usd)

    def _quote(self, keys: tuple[str, ...], *, at: datetime, credits_per_usd: int) -> None:
        for key in keys:
            model = self.models[key]
            try:
                usd, credits = self.quote(key, at, credits_per_usd).sample()
            except (errors.PricingNotFound, errors.PricingFailed):
                continue  # nothing to show until it has a price it can charge
            self._record(
                PriceQuoted(
                    key=key,
                    name=model.display_name,
                    provider=model.provider,
                    unit_type=model.unit_type,
                    sample_cost_usd=usd,
                    sample_cost_credits=credits,
                    active=model.active,
                    at=at,
                )
            )

    # --- state ------------------------------------------------------------------------------

    def _apply(self, event: Any) -> None:
        match event:
            case ModelDefined():  # and ModelChanged, its subclass
                self.models[event.key] = Model(**event.model_dump(include=set(Model.__dataclass_fields__)))
            case PriceSet():
                price = Price(**event.model_dump(include=set(Price.__dataclass_fields__)))
                insort(self.prices.setdefault(event.key, []), price, key=lambda p: p.effective_from)
            case MarginPolicySet():
                fields = event.model_dump(include=set(MarginPolicy.__dataclass_fields__))
                self.policies[event.scope] = MarginPolicy(**{**fields, "rounding": Rounding(event.rounding)})
            case PriceQuoted():
                pass  # a published figure, not state

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "models": _MODELS.dump_python(self.models, mode="json"),
            "prices": _PRICES.dump_python(self.prices, mode="json"),
            "policies": _POLICIES.dump_python(self.policies, mode="json"),
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        catalogue = cls()
        catalogue.models = _MODELS.validate_python(data["models"])
        catalogue.prices = _PRICES.validate_python(data["prices"])
        catalogue.policies = _POLICIES.validate_python(data["policies"])
        return catalogue


def _fields(value: Price | MarginPolicy) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__dataclass_fields__}
