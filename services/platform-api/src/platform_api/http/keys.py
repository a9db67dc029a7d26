from aiohttp import web

from platform_api.application.catalogue import CatalogueUseCases

CATALOGUE = web.AppKey("catalogue", CatalogueUseCases)
