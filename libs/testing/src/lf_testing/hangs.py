"""What every asyncio task was doing when a test ran out of time (pytest-timeout).

pytest-timeout prints the threads' stacks, which for an asyncio test is one frame: the event loop
in ``select``. The cause of a hang is in the tasks (who awaits what), so on timeout the plugin also
prints every task of every running loop with its stack.
"""

from __future__ import annotations

import asyncio
import gc
import io
import signal
import sys
import threading
from typing import TextIO


def running_loops() -> list[asyncio.AbstractEventLoop]:
    # Found through the GC, not asyncio's thread-local running loop: the thread method's timer
    # runs in a thread of its own, where no loop is running.
    return [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()]


def format_tasks(loop: asyncio.AbstractEventLoop) -> str:
    out = io.StringIO()
    tasks = sorted(asyncio.all_tasks(loop), key=lambda task: task.get_name())
    out.write(f"{len(tasks)} asyncio task(s) of {loop!r}:\n")
    for task in tasks:
        out.write(f"\n--- {task!r}\n")
        task.print_stack(limit=30, file=out)
        waiting_on = getattr(task, "_fut_waiter", None)  # what the task awaits right now
        if waiting_on is not None:
            out.write(f"    awaiting {waiting_on!r}\n")
    return out.getvalue()


def dump_asyncio_tasks(file: TextIO | None = None) -> None:
    file = file or sys.stderr
    loops = running_loops()
    file.write(f"\n{'+' * 30} asyncio tasks at timeout {'+' * 30}\n")
    if not loops:
        file.write("no event loop is running\n")
    for loop in loops:
        try:
            file.write(format_tasks(loop))
        except RuntimeError as error:  # the set of tasks changed while listed (thread method)
            file.write(f"cannot list the tasks of {loop!r}: {error}\n")
    file.flush()


def arm(timeout: float, method: str) -> threading.Timer | None:
    """Called once pytest-timeout has set its timer: dump the tasks just before it fires."""
    if method == "signal" and threading.current_thread() is threading.main_thread():
        fail = signal.getsignal(signal.SIGALRM)
        if callable(fail):

            def dump_then_fail(signum: int, frame: object) -> None:
                __tracebackhide__ = True
                dump_asyncio_tasks()
                fail(signum, frame)

            signal.signal(signal.SIGALRM, dump_then_fail)
        return None
    # The thread method ends the process when it fires: dump a moment before.
    timer = threading.Timer(max(0.0, timeout - min(1.0, timeout / 20)), dump_asyncio_tasks)
    timer.daemon = True
    timer.name = "lf_testing asyncio task dump"
    timer.start()
    return timer
