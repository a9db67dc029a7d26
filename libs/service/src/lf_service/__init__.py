"""Service kit: what every service's ``__main__`` and ``app.py`` share beyond the web kit.

``service_main`` is the command line (``serve | migrate | projections rebuild [NAME] | verify``,
plus a service's own commands); ``use_broker`` the broker connection of its app;
``use_background_work`` the work it runs beside HTTP; ``service_pool`` a pool for work outside
the app (``before_serving``, a service's own commands).
"""

from lf_service.background import use_background_work
from lf_service.broker import BROKER, use_broker
from lf_service.main import Command, Service, service_main
from lf_service.pools import service_pool

__all__ = [
    "BROKER",
    "Command",
    "Service",
    "service_main",
    "service_pool",
    "use_background_work",
    "use_broker",
]
