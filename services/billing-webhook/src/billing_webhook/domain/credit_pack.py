"""A credit pack: a LemonSqueezy variant and the credits it grants. Defined once, then changed
(renamed, repriced, deactivated); an unchanged definition records nothing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Self

from billing_webhook.domain import errors
from billing_webhook.domain.events import CreditPackChanged, CreditPackDefined
from lf_eventstore import Aggregate, by_name


@dataclass(frozen=True, slots=True)
class PackTerms:
    product_id: str
    name: str
    price_cents: int
    credits_granted: int
    test_mode: bool
    active: bool = True


class CreditPack(Aggregate):
    event_types = by_name(CreditPackDefined, CreditPackChanged)

    def __init__(self) -> None:
        super().__init__()
        self.terms: PackTerms | None = None

    def put(self, variant_id: str, terms: PackTerms, *, at: datetime) -> bool:
        """Define or change the pack; returns whether anything changed."""
        if terms.credits_granted <= 0 or terms.price_cents < 0 or not terms.name.strip():
            raise errors.InvalidCreditPack("a pack has a name, grants credits and costs zero or more")
        if terms == self.terms:
            return False
        kind = CreditPackDefined if self.terms is None else CreditPackChanged
        self._record(kind(variant_id=variant_id, **asdict(terms), at=at))
        return True

    def _apply(self, event: Any) -> None:
        self.terms = PackTerms(**event.model_dump(include=set(PackTerms.__dataclass_fields__)))

    def to_snapshot(self) -> dict[str, Any]:
        return {"terms": asdict(self.terms) if self.terms else None}

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        pack = cls()
        pack.terms = PackTerms(**data["terms"]) if data["terms"] else None
        return pack
