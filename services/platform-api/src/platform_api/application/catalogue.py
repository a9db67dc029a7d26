"""The catalogue's use cases: each one command on one lens or workflow, decided by
``lf_eventstore``'s runner (``CommandRunner.submit``).

A decision is pure: the aggregate checks its rules and records its version. A workflow's decision
also reads the lenses and workflows its nodes name (``Facts``, looked up in the command's one read,
after its stream is locked), so what it pins is what the read models held in that transaction.
A lens or workflow that does not exist, or is someone else's, is not found: the aggregate's
factory refuses it, or its own owner check does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from lf_eventstore import AggregateRepository, Command, CommandRunner, Decision, Facts, UseCases
from platform_api.domain.definitions import LensDefinition, WorkflowDefinition
from platform_api.domain.errors import LensNotFound, WorkflowNotFound
from platform_api.domain.graph import Catalogue, LensFacts, WorkflowFacts, WorkflowVersionFacts
from platform_api.domain.lens import Lens
from platform_api.domain.workflow import Workflow
from platform_api.projections import INLINE

LENSES = AggregateRepository(Lens, "lens", snapshot_every=100)
WORKFLOWS = AggregateRepository(Workflow, "workflow", snapshot_every=100)

FACTS_SQL = "SELECT command_facts($1)"


def no_lens() -> Lens:
    raise LensNotFound()


def no_workflow() -> Workflow:
    raise WorkflowNotFound()


class CatalogueUseCases(UseCases):
    def __init__(self, pool: asyncpg.Pool, *, appended: Callable[[], None] | None = None) -> None:
        """``appended``: the process's ``Wakeup.appended``, called after each command commits."""
        super().__init__(CommandRunner(pool, INLINE, appended=appended))

    async def create_lens(
        self, caller: UUID, definition: LensDefinition, *, metadata: dict[str, Any]
    ) -> tuple[UUID, int]:
        lens_id = uuid4()

        def decide(_: Decision, lens: Lens) -> int:
            return lens.create(lens_id, caller, definition)

        return lens_id, await self.commands.submit(Command(LENSES, lens_id, decide, metadata))

    async def revise_lens(
        self, caller: UUID, lens_id: UUID, definition: LensDefinition, *, metadata: dict[str, Any]
    ) -> int:
        def decide(_: Decision, lens: Lens) -> int:
            return lens.revise(caller, definition)

        return await self.commands.submit(Command(LENSES, lens_id, decide, metadata, new=no_lens))

    async def create_workflow(
        self, caller: UUID, definition: WorkflowDefinition, *, metadata: dict[str, Any]
    ) -> tuple[UUID, int]:
        workflow_id = uuid4()

        def decide(decision: Decision, workflow: Workflow) -> int:
            workflow.create(workflow_id, caller, definition, decision.facts)
            return workflow.latest

        version = await self.commands.submit(
            Command(WORKFLOWS, workflow_id, decide, metadata, facts=named_by(definition))
        )
        return workflow_id, version

    async def revise_workflow(
        self, caller: UUID, workflow_id: UUID, definition: WorkflowDefinition, *, metadata: dict[str, Any]
    ) -> int:
        def decide(decision: Decision, workflow: Workflow) -> int:
            workflow.revise(caller, definition, decision.facts)
            return workflow.latest

        return await self.commands.submit(
            Command(WORKFLOWS, workflow_id, decide, metadata, new=no_workflow, facts=named_by(definition))
        )


def named_by(definition: WorkflowDefinition) -> Facts:
    """The lenses and workflows a definition's nodes name, read as the command decides."""
    lenses = sorted({str(n.lens_id) for n in definition.nodes if n.lens_id})
    workflows = sorted({str(n.workflow_id) for n in definition.nodes if n.workflow_id})
    needs: dict[str, Any] = {}
    if lenses:
        needs["lenses"] = lenses
    if workflows:
        needs["workflows"] = workflows
    return Facts(FACTS_SQL, needs, parse=parse_catalogue)


def parse_catalogue(found: dict[str, Any]) -> Catalogue:
    return Catalogue(
        lenses={
            UUID(row["lens_id"]): LensFacts(
                UUID(row["owner_id"]),
                row["published"],
                {int(v): frozenset(names) for v, names in (row["parameters"] or {}).items()},
            )
            for row in found["lenses"]
        },
        workflows={
            UUID(row["workflow_id"]): WorkflowFacts(
                UUID(row["owner_id"]),
                row["published"],
                {
                    int(v): WorkflowVersionFacts(facts["depth"], frozenset(map(UUID, facts["includes"])))
                    for v, facts in (row["versions"] or {}).items()
                },
            )
            for row in found["workflows"]
        },
    )
