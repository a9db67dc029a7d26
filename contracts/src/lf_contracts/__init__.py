"""Contracts shared across services: error codes, integration events, OpenAPI documents."""

from pathlib import Path


def openapi_spec(service: str) -> Path:
    """The OpenAPI document a service serves at /openapi.yaml (contracts/openapi/<service>.yaml)."""
    return Path(__file__).parent / "openapi" / f"{service}.yaml"
