"""Writes that follow the answer: retried while they fail, waited for at shutdown."""

from __future__ import annotations

from execution_proxy.application import afterwards
from execution_proxy.application.afterwards import Afterwards


async def test_a_failing_write_is_retried_until_it_lands_and_drain_waits_for_it(monkeypatch):
    monkeypatch.setattr(afterwards, "FIRST_BACKOFF_SECONDS", 0.01)
    attempts: list[int] = []

    async def write() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("database away")

    later = Afterwards()
    later.add(write, what="a record")
    await later.drain()

    assert len(attempts) == 3
