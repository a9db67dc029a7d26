"""Reference ids of the executions asked of execution-proxy (``lf_service.execution_proxy``).

execution-proxy answers a repeated reference id from its record of the first execution: never run
or charged twice, and a FAILED one failed again, for ever. So a reference names one execution of a
step, not the step: a step asked again after a crash (its outcome unknown) asks under the same one
and is answered from the record; a step asked again after a failure execution-proxy answered asks
under the next one, or it could never succeed.

The first execution keeps the step's plain reference (``<base>:<step>``, what every step was asked
under before executions were counted: a claim recorded then and taken again now still finds its
record); the n-th is ``<base>:<step>:<n>``.
"""

from __future__ import annotations


def reference_id(base: str, step: str, execution: int) -> str:
    return f"{base}:{step}" if execution <= 1 else f"{base}:{step}:{execution}"
