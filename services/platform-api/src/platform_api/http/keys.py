from aiohttp import web

from platform_api.application.catalogue import CatalogueUseCases
from platform_api.application.partners import PartnerUseCases

CATALOGUE = web.AppKey("catalogue", CatalogueUseCases)
PARTNERS = web.AppKey("partners", PartnerUseCases)
