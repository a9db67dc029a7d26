from uuid import UUID

from lf_web import ServiceSettings


class PlatformSettings(ServiceSettings):
    """platform-api's settings. Its secrets are the kit's (``PLATFORM_API_KEY``, the JWT secret or
    JWKS): none has a working default outside ``ENV_MODE=development``. ``PLATFORM_API_KEY`` is
    also what run workers send execution-proxy (``X-Platform-Api-Key``). SSE and partners add
    theirs (``CHAINABIT_*``) with the slices that use them."""

    port: int = 8787
    execution_proxy_url: str = "http://127.0.0.1:8102"
    run_worker_prefetch: int = 16
    """Node attempts one process executes at once (the work queue's prefetch)."""
    node_timeout_seconds: float = 300.0
    """Longest wait for one node's execution (a run's deadline may cut it shorter)."""
    default_provider: str = "local"
    """execution-proxy provider for a model whose name says none and no ``providerOverride``."""
    sponsor_id: UUID | None = None
    """Who pays for ``fundingSource: sponsored`` runs; without it their nodes fail."""
