"""Logs as one JSON object per line on stdout, with secrets masked before they are written.

structlog and the standard library share one pipeline (aiohttp and asyncpg log through stdlib), so
every line has the same fields: timestamp (ISO, UTC), level, service, logger, request_id when a
request is running, event. Redaction runs last but for rendering, after tracebacks became text,
so nothing reaches stdout unmasked: values under secret-sounding keys at any depth, and bearer
tokens or JWTs found inside any string.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

MASK = "[REDACTED]"
# "token" but not "tokens": prompt_tokens, max_tokens are usage counts an AI platform must log.
SECRET_KEY = re.compile(
    r"password|secret|token(?!s)|api[_-]?key|authorization|signature|preimage|macaroon|cookie", re.IGNORECASE
)
_BEARER = re.compile(r"\bbearer\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return _JWT.sub(MASK, _BEARER.sub(f"Bearer {MASK}", value))
    if isinstance(value, dict):
        return {key: MASK if SECRET_KEY.search(str(key)) else _mask(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(item) for item in value]
    return value


def redact(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor; builds new containers, never edits the caller's."""
    return _mask(event_dict)


def _add_service(service: str) -> Processor:
    def add_service(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add_service


def configure_logging(level: str, service: str) -> None:
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,  # keeps structlog.testing.capture_logs usable
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
