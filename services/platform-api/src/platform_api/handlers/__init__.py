"""Integration-event handlers, by contract class. platform-api consumes nothing yet; run workers and
their work queue arrive with runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

HANDLERS: dict[type, Callable[..., Any]] = {}
