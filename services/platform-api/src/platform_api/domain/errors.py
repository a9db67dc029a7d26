"""The catalogue's refusals. ``http/errors.py`` maps each class to a catalogue code."""

from __future__ import annotations

from typing import Any


class CatalogueError(Exception):
    """The base of every refusal of the catalogue."""


class InvalidDefinition(CatalogueError):
    """A lens or workflow that cannot be run: each problem names where it is (``field``, as the
    client sent it, e.g. ``edges.2``) and what is wrong, so a client can point at it."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{p['field']}: {p['message']}" for p in problems))
        self.problems = problems

    @property
    def details(self) -> dict[str, Any]:
        return {"fields": self.problems}


class LensNotFound(CatalogueError):
    """No such lens, or another lenser's that is not published: the same answer, so that an id
    says nothing about whether someone else's private lens exists."""


class WorkflowNotFound(CatalogueError):
    """No such workflow, or another lenser's that is not published."""


def problem(field: str, message: str) -> dict[str, Any]:
    return {"field": field, "message": message}


class RunNotFound(CatalogueError):
    """No such run, or another lenser's: the same answer for both."""


class IdempotencyConflict(CatalogueError):
    """An ``idempotencyKey`` used within 24 h for a different request."""
