from typing import Any


def from_message(context: Any) -> dict[str, Any]:
    """Event metadata for an effect caused by a message: the chain of ids goes on."""
    return {
        "correlationId": context.correlation_id or context.message_id,
        "causationId": context.message_id,
        "actor": f"message:{context.routing_key}",
    }
