"""Web kit shared by every service: app factory, envelope, errors, auth, rate limits, logs,
metrics, health, settings and the sealing of secrets at rest (lf_web.sealing). Services import from here."""

from lf_web.app import create_app, run
from lf_web.auth import JWT_VERIFIER, JwtVerifier, require_user
from lf_web.body import RequestBody, parse_body, parse_query
from lf_web.envelope import error_response, ok, page_meta
from lf_web.errors import Refusals
from lf_web.health import HEALTH_CHECKS, add_health_check
from lf_web.keys import BROKER_CHECK, PG_POOL, SETTINGS, WAKEUP, BrokerCheck
from lf_web.logging import configure_logging
from lf_web.metadata import event_metadata
from lf_web.path import path_matching, path_uuid
from lf_web.ratelimit import MIGRATIONS, RateDecision, RateLimiter, enforce
from lf_web.request_context import REQUEST_ID
from lf_web.settings import ServiceSettings

__all__ = [
    "BROKER_CHECK",
    "HEALTH_CHECKS",
    "JWT_VERIFIER",
    "MIGRATIONS",
    "PG_POOL",
    "REQUEST_ID",
    "SETTINGS",
    "WAKEUP",
    "BrokerCheck",
    "JwtVerifier",
    "RateDecision",
    "RateLimiter",
    "Refusals",
    "RequestBody",
    "ServiceSettings",
    "add_health_check",
    "configure_logging",
    "create_app",
    "enforce",
    "error_response",
    "event_metadata",
    "ok",
    "page_meta",
    "parse_body",
    "parse_query",
    "path_matching",
    "path_uuid",
    "require_user",
    "run",
]
