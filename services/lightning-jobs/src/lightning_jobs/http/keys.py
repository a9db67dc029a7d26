from aiohttp import web

from lightning_jobs.adapters.stub import StubBackend
from lightning_jobs.application.flow import JobFlow
from lightning_jobs.application.sessions import SessionFlow

FLOW = web.AppKey("job_flow", JobFlow)
STUB = web.AppKey("stub_backend", StubBackend)
SESSION_FLOW = web.AppKey("session_flow", SessionFlow)
