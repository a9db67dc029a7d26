"""A workflow: a DAG of lens and sub-workflow nodes, in immutable versions.

Its rules: a version is a runnable DAG of what its owner may use (``graph.resolve``, given what the
definition names as the read models hold it); only its owner makes new versions.
"""

from __future__ import annotations

from typing import Any, Self
from uuid import UUID

from lf_eventstore import Aggregate, DomainEvent, by_name
from platform_api.domain.definitions import WorkflowDefinition
from platform_api.domain.errors import WorkflowNotFound
from platform_api.domain.events import WorkflowCreated, WorkflowRevised
from platform_api.domain.graph import Catalogue, Resolved, resolve


class Workflow(Aggregate):
    event_types = by_name(WorkflowCreated, WorkflowRevised)

    def __init__(self) -> None:
        super().__init__()
        self.workflow_id: UUID | None = None
        self.owner_id: UUID | None = None
        self.latest = 0

    def create(
        self, workflow_id: UUID, owner_id: UUID, definition: WorkflowDefinition, catalogue: Catalogue
    ) -> Resolved:
        resolved = resolve(definition, workflow_id=workflow_id, caller=owner_id, catalogue=catalogue)
        self._record(
            WorkflowCreated(
                workflow_id=workflow_id,
                owner_id=owner_id,
                version=1,
                definition=resolved.definition,
                depth=resolved.depth,
                includes=sorted(resolved.includes),
            )
        )
        return resolved

    def revise(self, caller: UUID, definition: WorkflowDefinition, catalogue: Catalogue) -> Resolved:
        if self.workflow_id is None or caller != self.owner_id:
            raise WorkflowNotFound()
        resolved = resolve(definition, workflow_id=self.workflow_id, caller=caller, catalogue=catalogue)
        self._record(
            WorkflowRevised(
                workflow_id=self.workflow_id,
                version=self.latest + 1,
                definition=resolved.definition,
                depth=resolved.depth,
                includes=sorted(resolved.includes),
            )
        )
        return resolved

    def _apply(self, event: DomainEvent) -> None:
        match event:
            case WorkflowCreated():
                self.workflow_id, self.owner_id = event.workflow_id, event.owner_id
                self.latest = event.version
            case WorkflowRevised():
                self.latest = event.version

    def to_snapshot(self) -> dict[str, Any]:
        return {"workflow_id": str(self.workflow_id), "owner_id": str(self.owner_id), "latest": self.latest}

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        workflow = cls()
        workflow.workflow_id, workflow.owner_id = UUID(data["workflow_id"]), UUID(data["owner_id"])
        workflow.latest = data["latest"]
        return workflow
