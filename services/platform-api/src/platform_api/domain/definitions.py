"""The values a lens or workflow version is made of, as lensers write them.

Plain data, frozen. They are stored in the events as they are (snake_case) and travel on the wire in
camelCase (seed 001's style), hence the alias generator: the HTTP bodies embed them directly, so a
``validation_error`` names a field as the client sent it (``nodes.0.lensId``).
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from pydantic.alias_generators import to_camel

ParameterType = Literal["string", "number", "boolean", "object"]
MergeStrategy = Literal["last_write_wins", "concat", "array", "json_object"]

NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""A parameter's name: what ``{{name}}`` in a template can name."""
NODE_ID = r"^[A-Za-z0-9_.-]{1,64}$"

MAX_PARAMETERS = 64
MAX_NODES = 200
MAX_EDGES = 1000


class Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


class Parameter(Value):
    name: str = Field(pattern=NAME, max_length=64)
    type: ParameterType
    required: StrictBool = False
    default: Any = None
    """``null`` (or absent) is no default: no parameter type has null as a value."""


class LensDefinition(Value):
    name: str = Field(min_length=1, max_length=200)
    template: str = Field(min_length=1, max_length=100_000)
    parameters: list[Parameter] = Field(default_factory=list, max_length=MAX_PARAMETERS)
    model_id: str = Field(min_length=1, max_length=128)
    published: StrictBool = False


class NodeConfig(Value):
    model_id: str | None = Field(default=None, min_length=1, max_length=128)
    param_overrides: dict[str, Any] | None = None


class Node(Value):
    """A lens node names ``lensId``; a sub-workflow node names ``workflowId`` instead. Either may
    pin a version; unpinned, the workflow version pins the latest one when it is made, so a run of
    it never changes when the lens or sub-workflow gets a new version."""

    id: str = Field(pattern=NODE_ID)
    lens_id: UUID | None = None
    lens_version: StrictInt | None = Field(default=None, ge=1)
    workflow_id: UUID | None = None
    workflow_version: StrictInt | None = Field(default=None, ge=1)
    label: str = Field(default="", max_length=200)
    config: NodeConfig = Field(default_factory=NodeConfig)


class Edge(Value):
    source: str = Field(min_length=1, max_length=64)
    target: str = Field(min_length=1, max_length=64)
    source_output_key: str = Field(default="output", min_length=1, max_length=64)
    target_param: str = Field(min_length=1, max_length=64)
    merge_strategy: MergeStrategy = "last_write_wins"
    condition: str | None = Field(default=None, max_length=1000)
    """Kept as written; the run worker evaluates it (runs are the next slice)."""


class WorkflowDefinition(Value):
    name: str = Field(min_length=1, max_length=200)
    nodes: list[Node] = Field(min_length=1, max_length=MAX_NODES)
    edges: list[Edge] = Field(default_factory=list, max_length=MAX_EDGES)
    budget_credits: StrictInt | None = Field(default=None, ge=1)
    deadline_seconds: StrictInt | None = Field(default=None, ge=1, le=86_400)
    published: StrictBool = False
