"""What a cancel of an internal execution finds, named once (``POST /internal/executions/cancel``).

A cancel is asked by reference; what it answers depends only on two facts read after the cancel
was written: whether an execution under that reference had started (claimed, on any replica) and
how it was recorded, if it was (``ended``: None while it runs).
"""

from __future__ import annotations

from typing import Literal

CancelState = Literal["cancelled", "cancelling", "ended", "pending"]


def cancel_state(*, started: bool, ended: bool, cancelled: bool) -> CancelState:
    """``cancelled``: stopped by a cancel and recorded so; ``ended``: it ended on its own first (the
    record is what it was); ``cancelling``: it runs, and stops when its replica sees the cancel;
    ``pending``: nothing started, and nothing will under this reference."""
    if ended:
        return "cancelled" if cancelled else "ended"
    return "cancelling" if started else "pending"
