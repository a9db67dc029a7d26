"""What a service's OpenAPI test reads from its document and its app (each service's
``tests/unit/test_openapi.py`` asserts its own rules on them)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiohttp import web

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "options", "head", "trace"})


def registered_operations(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route: HEAD comes with every GET, and a catch-all of any
    method (``*``) is no operation OpenAPI can name."""
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method not in ("HEAD", "*") and route.resource is not None
    }


def documented_operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path) for path, item in spec["paths"].items() for method in item if method in HTTP_METHODS
    }


def responses(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """("<method> <path>", status, response) of every operation, references resolved."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                for status, response in operation["responses"].items():
                    while "$ref" in response:
                        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
                    yield f"{method} {path}", status, response
