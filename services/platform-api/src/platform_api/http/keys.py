from aiohttp import web

from platform_api.application.catalogue import CatalogueUseCases
from platform_api.application.partners import PartnerUseCases
from platform_api.application.run_events import RunEventsHub

CATALOGUE = web.AppKey("catalogue", CatalogueUseCases)
PARTNERS = web.AppKey("partners", PartnerUseCases)
RUN_EVENTS = web.AppKey("run_events", RunEventsHub)
"""The process's one listener of run events, which fans them out to the SSE clients."""
