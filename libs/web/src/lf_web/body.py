"""Request bodies and query strings parsed into pydantic models, or a 400 ``validation_error``.

Errors name the offending field by its dotted path (``items.0.price``) so a client can point at it;
they never echo the submitted value, which may be a secret. The body is read through aiohttp, which
stops at ``client_max_size`` whether or not the client sent a Content-Length; the error middleware
turns that refusal into the same ``validation_error``.
"""

from __future__ import annotations

from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from lf_contracts.errors import VALIDATION_ERROR, ApiError

Model = TypeVar("Model", bound=BaseModel)


class RequestBody(BaseModel):
    """The base of every JSON body a route reads: fields written in snake_case, sent in camelCase.

    Unknown fields are refused. A field is also accepted under its Python name (what clients built
    before the camelCase contract send); either way a ``validation_error`` names the field as the
    client sent it, or by its camelCase name when it is missing. Numbers a route must not coerce
    are declared ``StrictInt`` (or ``Field(strict=True)``) on the field.
    """

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


def _invalid(exc: ValidationError, whole: str) -> ApiError:
    fields = [
        {"field": ".".join(str(part) for part in error["loc"]) or whole, "message": error["msg"]}
        for error in exc.errors(include_url=False, include_input=False)
    ]
    return ApiError(VALIDATION_ERROR, details={"fields": fields})


# A NUL character is valid JSON but no text column or jsonb value can hold it: refuse it here, as
# bad input, rather than fail later in the database.
_NUL = (b"\\u0000", b"\x00")


async def parse_body(request: web.Request, model: type[Model], *, allow_nul: bool = False) -> Model:
    """A JSON object validated as ``model``; bad JSON and non-objects are errors on field "body".

    ``allow_nul``: for bodies we must accept as they are (signed deliveries); the caller then keeps
    NULs out of what it stores."""
    raw = await request.read()
    if not allow_nul and any(nul in raw for nul in _NUL):
        raise ApiError(
            VALIDATION_ERROR, details={"fields": [{"field": "body", "message": "contains a NUL character"}]}
        )
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise _invalid(exc, "body") from None


def _is_many(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (Union, UnionType):  # list[str] | None
        return any(_is_many(arg) for arg in get_args(annotation))
    return origin in (list, tuple, set, frozenset)


def parse_query(request: web.Request, model: type[Model]) -> Model:
    """Query parameters validated as ``model``: ``?tag=a&tag=b`` fills a list field, and a list
    field given once is a list of one; any other field takes the parameter's first value."""
    many = {field.alias or name for name, field in model.model_fields.items() if _is_many(field.annotation)}
    values = {key: request.query.getall(key) if key in many else request.query[key] for key in request.query}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise _invalid(exc, "query") from None
