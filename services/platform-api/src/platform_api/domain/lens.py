"""A lens: a prompt template with named parameters and a default model, in immutable versions.

Its rules: a version's template and parameters fit together (``parameters.check_lens``); only its
owner makes new versions (to anyone else it does not exist).
"""

from __future__ import annotations

from typing import Any, Self
from uuid import UUID

from lf_eventstore import Aggregate, DomainEvent, by_name
from platform_api.domain.definitions import LensDefinition
from platform_api.domain.errors import LensNotFound
from platform_api.domain.events import LensCreated, LensRevised
from platform_api.domain.parameters import check_lens


class Lens(Aggregate):
    event_types = by_name(LensCreated, LensRevised)

    def __init__(self) -> None:
        super().__init__()
        self.lens_id: UUID | None = None
        self.owner_id: UUID | None = None
        self.latest = 0

    def create(self, lens_id: UUID, owner_id: UUID, definition: LensDefinition) -> int:
        check_lens(definition)
        self._record(LensCreated(lens_id=lens_id, owner_id=owner_id, version=1, definition=definition))
        return self.latest

    def revise(self, caller: UUID, definition: LensDefinition) -> int:
        if self.lens_id is None or caller != self.owner_id:
            raise LensNotFound()
        check_lens(definition)
        self._record(LensRevised(lens_id=self.lens_id, version=self.latest + 1, definition=definition))
        return self.latest

    def _apply(self, event: DomainEvent) -> None:
        match event:
            case LensCreated():
                self.lens_id, self.owner_id, self.latest = event.lens_id, event.owner_id, event.version
            case LensRevised():
                self.latest = event.version

    def to_snapshot(self) -> dict[str, Any]:
        return {"lens_id": str(self.lens_id), "owner_id": str(self.owner_id), "latest": self.latest}

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        lens = cls()
        lens.lens_id, lens.owner_id = UUID(data["lens_id"]), UUID(data["owner_id"])
        lens.latest = data["latest"]
        return lens
