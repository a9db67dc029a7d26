"""What processing a delivery did, for its record and for the metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["applied", "unchanged", "deferred", "ignored"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """``applied``: something new happened. ``unchanged``: a repeat, already done. ``deferred``:
    remembered until another delivery arrives. ``ignored``: recorded and acknowledged only."""

    kind: Kind
    detail: str

    @classmethod
    def applied(cls, detail: str) -> Outcome:
        return cls("applied", detail)

    @classmethod
    def unchanged(cls, detail: str) -> Outcome:
        return cls("unchanged", detail)

    @classmethod
    def deferred(cls, detail: str) -> Outcome:
        return cls("deferred", detail)

    @classmethod
    def ignored(cls, detail: str) -> Outcome:
        return cls("ignored", detail)
