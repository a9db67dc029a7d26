from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import Field

from lf_contracts.events.base import Payload


class RunNodeQueuedV1(Payload):
    """A node attempt of a platform run is ready: platform-api's run workers (competing consumers
    of ``platform-api.work``) execute it. Only platform-api publishes and consumes it; it travels
    through the broker so that any replica's worker may take it and a dead one's is redelivered."""

    routing_key: ClassVar[str] = "platform.run_node_queued.v1"
    run_id: UUID
    node_id: str = Field(min_length=1, max_length=64)
    attempt: int = Field(ge=1)
