"""The catalogue's domain events, stored under their class names (past tense: what happened).

A lens's or workflow's first version is ``...Created`` (it carries the owner); every later one is
``...Revised``. Each carries its whole version, so a version is read from one event and never
changes once written.
"""

from __future__ import annotations

from uuid import UUID

from lf_eventstore import DomainEvent
from platform_api.domain.definitions import LensDefinition, WorkflowDefinition


class LensCreated(DomainEvent):
    lens_id: UUID
    owner_id: UUID
    version: int
    definition: LensDefinition


class LensRevised(DomainEvent):
    lens_id: UUID
    version: int
    definition: LensDefinition


class WorkflowCreated(DomainEvent):
    workflow_id: UUID
    owner_id: UUID
    version: int
    definition: WorkflowDefinition
    depth: int
    includes: list[UUID]


class WorkflowRevised(DomainEvent):
    workflow_id: UUID
    version: int
    definition: WorkflowDefinition
    depth: int
    includes: list[UUID]
