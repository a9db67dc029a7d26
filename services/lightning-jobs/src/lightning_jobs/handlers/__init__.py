"""Integration-event handlers, by contract class. lightning-jobs consumes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

HANDLERS: dict[type, Callable[..., Any]] = {}
