from aiohttp import web

from lf_web import RateLimiter
from platform_api.application.catalogue import CatalogueUseCases
from platform_api.application.partners import PartnerUseCases
from platform_api.application.run_events import RunEventsHub
from platform_api.application.runs import RunUseCases

CATALOGUE = web.AppKey("catalogue", CatalogueUseCases)
PARTNERS = web.AppKey("partners", PartnerUseCases)
RUNS = web.AppKey("runs", RunUseCases)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
RUN_EVENTS = web.AppKey("run_events", RunEventsHub)
"""The process's one listener of run events, which fans them out to the SSE clients."""
