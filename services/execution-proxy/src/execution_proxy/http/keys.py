from aiohttp import web

from execution_proxy.application.catalogue import CatalogueAdmin
from execution_proxy.application.detached import DetachedExecutions
from execution_proxy.application.executions import Executions
from execution_proxy.application.keys import ByokKeys
from lf_web import RateLimiter

EXECUTIONS = web.AppKey("executions", Executions)
DETACHED = web.AppKey("detached", DetachedExecutions)
CATALOGUE = web.AppKey("catalogue", CatalogueAdmin)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
BYOK_KEYS = web.AppKey("byok_keys", ByokKeys)
