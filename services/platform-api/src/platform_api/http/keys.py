from aiohttp import web

from lf_web import RateLimiter
from platform_api.application.catalogue import CatalogueUseCases
from platform_api.application.runs import RunUseCases

CATALOGUE = web.AppKey("catalogue", CatalogueUseCases)
RUNS = web.AppKey("runs", RunUseCases)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
