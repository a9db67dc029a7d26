"""Why execution-proxy refuses a request. The HTTP layer maps each to a code of the catalogue
(``http/errors.py``); none is raised after anything was reserved or recorded."""

from __future__ import annotations

from typing import Any


class ExecutionError(Exception):
    """Base of every refusal."""


class InvalidMessages(ExecutionError):
    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__("Messages array failed sanitization")
        self.problems = problems
        self.details = {"fields": problems}


class ModelNotFound(ExecutionError):
    def __init__(self, model: str) -> None:
        super().__init__(f"no active model {model!r} in the catalogue")


class PricingNotFound(ExecutionError):
    def __init__(self, model: str) -> None:
        super().__init__(f"no price in effect for model {model!r}")


class PricingFailed(ExecutionError):
    """A price exists but yields no charge (e.g. a minimum above the maximum)."""


class UnsupportedProvider(ExecutionError):
    def __init__(self, provider: str) -> None:
        super().__init__(f"provider {provider!r} has no platform key configured")


class ProviderMismatch(ExecutionError):
    def __init__(self, requested: str, actual: str) -> None:
        super().__init__(f"the key is for {actual!r}, the request is for {requested!r}")


class KeyResolutionFailed(ExecutionError):
    """No such key of this lenser: someone else's key answers exactly like a missing one."""

    def __init__(self) -> None:
        super().__init__("BYOK key not found or not owned by this user")


class RunningElsewhere(ExecutionError):
    """The execution of this reference runs in another process (its owner's heartbeat is fresh):
    not run a second time here; asked again, it is attached to or replayed once it ended."""

    def __init__(self) -> None:
        super().__init__("this referenceId runs on another replica: ask again shortly")


class ExecutionCancelled(ExecutionError):
    """The execution's reference was cancelled (POST /internal/executions/cancel) before it
    started, or before its provider was asked: it never runs, nothing is reserved."""

    def __init__(self) -> None:
        super().__init__("this referenceId was cancelled: the execution does not run")


class InvalidKey(ExecutionError):
    """A BYOK key that cannot be stored (answered as validation_error, the fields named)."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__()  # the catalogue's message, as for any other body that fails validation
        self.details = {"fields": problems}


class InvalidCatalogueChange(ExecutionError):
    """A model, price or margin policy that cannot be (answered as validation_error)."""
