"""Path parameters, read the one way every route reads them: a bad one is a 400 ``validation_error``
naming the parameter as the route template spells it, never a 404 or a 500."""

from __future__ import annotations

import re
from uuid import UUID

from aiohttp import web

from lf_contracts.errors import VALIDATION_ERROR, ApiError


def _invalid(name: str, message: str) -> ApiError:
    return ApiError(VALIDATION_ERROR, details={"fields": [{"field": name, "message": message}]})


def path_uuid(request: web.Request, name: str) -> UUID:
    try:
        return UUID(request.match_info[name])
    except ValueError:
        raise _invalid(name, "not a UUID") from None


def path_matching(request: web.Request, name: str, pattern: re.Pattern[str], message: str) -> str:
    """The parameter if the whole of it matches ``pattern``; ``message`` says what it must be."""
    value = request.match_info[name]
    if not pattern.fullmatch(value):
        raise _invalid(name, message)
    return value
