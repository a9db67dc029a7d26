"""Waiting for eventual effects with a deadline, instead of sleeping a guessed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, interval: float = 0.05
) -> None:
    """Return as soon as ``check()`` is true; fail with the check's name at the deadline."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {getattr(check, '__name__', check)}")
        await asyncio.sleep(interval)
