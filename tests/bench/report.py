"""What both reports share: how numbers and statements are written, and the machine they ran on."""

from __future__ import annotations

import contextlib
import os
import platform
import re
from pathlib import Path

import asyncpg


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None or value != value:  # None or NaN
        return "n/a"
    return f"{value:,.{digits}f}"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "n/a"


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def splice_between(path: Path, section: str, begin: str, end: str) -> None:
    """Replace the section between the markers ``begin`` and ``end`` in ``path``, or append it."""
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    path.write_text(text if text.endswith("\n") else text + "\n")


def short_sql(query: str, width: int) -> str:
    flat = re.sub(r"\s+", " ", query).strip()
    return flat if len(flat) <= width else flat[: width - 1] + "…"


async def machine_facts(admin: asyncpg.Connection, settings: tuple[str, ...]) -> dict[str, str]:
    """CPU, memory, OS, Python, the PostgreSQL version and the server ``settings`` named."""
    facts = {"nproc": str(os.cpu_count()), "python": platform.python_version(), "os": platform.platform()}
    facts["cpu"] = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():  # noqa: ASYNC240 - a small file
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
    facts["memory"] = "? GB RAM"
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])  # noqa: ASYNC240 - a small file
        facts["memory"] = f"{kb / 1024 / 1024:.0f} GB RAM"
    facts["pg"] = (await admin.fetchval("SHOW server_version")).split()[0]
    for name in settings:
        facts[name] = await admin.fetchval(f"SHOW {name}")
    return facts
