"""What the evaluation model's answer means: accept the request or reject it, with a reason.

The evaluation prompt asks for one JSON object ``{"accepted": bool, "reason": str}``. The first
such object in the answer decides. An answer without one is accepted: the evaluation is a screen
against requests the work model should not run, and the built-in ``local`` provider (development,
demos) answers words, not JSON; a model that cannot say "reject" has rejected nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_OBJECT = re.compile(r"\{[^{}]*\}", re.DOTALL)
NO_VERDICT = "the evaluator gave no verdict; accepted"


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str


def evaluation_prompt(request: str) -> str:
    return (
        "You screen requests for a paid AI agent. Reject requests that are illegal, harmful, or "
        "impossible to answer with text. Answer with one JSON object only: "
        '{"accepted": true|false, "reason": "<one sentence>"}.\n\nRequest:\n' + request
    )


def verdict_of(answer: str) -> Verdict:
    for match in _OBJECT.finditer(answer):
        try:
            found = json.loads(match.group(0))
        except ValueError:
            continue
        if isinstance(found, dict) and isinstance(found.get("accepted"), bool):
            reason = found.get("reason")
            return Verdict(found["accepted"], reason if isinstance(reason, str) and reason else "")
    return Verdict(True, NO_VERDICT)
