from dataclasses import dataclass

from aiohttp import web

from lf_web import RateLimiter
from lightning_jobs.adapters.gemini import GeminiChat, GeminiImages
from lightning_jobs.adapters.stub import StubBackend
from lightning_jobs.application.conversations import Conversations
from lightning_jobs.application.flow import JobFlow
from lightning_jobs.application.l402 import L402Flow
from lightning_jobs.application.notifications import PaymentNotifications
from lightning_jobs.application.ports import Agent
from lightning_jobs.application.sessions import SessionFlow
from lightning_jobs.http.client_ip import Networks


@dataclass(frozen=True)
class PerIpLimit:
    """An allowance per client IP (shared by replicas), and whose forwarded headers are believed:
    the free demo's, and the Gemini routes' (free in seed 002, but each call is paid by the service's
    own Gemini account)."""

    limiter: RateLimiter
    trusted_proxies: Networks
    limit: int
    period_seconds: int


@dataclass(frozen=True)
class Gemini:
    chat: GeminiChat
    model: str
    """The model of a message that names none (seed 002: ``gemini-3-flash-preview``)."""
    images: GeminiImages
    """``POST /api/gemini/generate-image``'s, on ``GEMINI_IMAGE_MODEL``."""


FLOW = web.AppKey("job_flow", JobFlow)
STUB = web.AppKey("stub_backend", StubBackend)
AGENT = web.AppKey("agent", Agent)
DEMO = web.AppKey("demo_limit", PerIpLimit)
GEMINI_LIMIT = web.AppKey("gemini_limit", PerIpLimit)
CONVERSATIONS = web.AppKey("gemini_conversations", Conversations)
GEMINI = web.AppKey("gemini", Gemini)
SESSION_FLOW = web.AppKey("session_flow", SessionFlow)
NOTIFICATIONS = web.AppKey("payment_notifications", PaymentNotifications)
L402 = web.AppKey("l402_flow", L402Flow)
