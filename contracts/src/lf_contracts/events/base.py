from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

REGISTRY: dict[str, type[IntegrationEvent]] = {}


class IntegrationEvent(BaseModel):
    """Base of every integration event; subclasses set ``routing_key`` and register themselves."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    routing_key: ClassVar[str]
    occurred_at: datetime = Field(alias="occurredAt")

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        key = cls.__dict__.get("routing_key")
        if key is not None:
            if key in REGISTRY:
                raise TypeError(f"routing key {key} is defined twice")
            REGISTRY[key] = cls


def model_for(routing_key: str) -> type[IntegrationEvent] | None:
    return REGISTRY.get(routing_key)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class Payload(IntegrationEvent):
    """Fields are snake_case in Python and camelCase on the wire."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, alias_generator=camel)


LenserId = UUID
