from lf_web import ServiceSettings


class PlatformSettings(ServiceSettings):
    """platform-api's settings. Its secrets are the kit's (``PLATFORM_API_KEY``, the JWT secret or
    JWKS): none has a working default outside ``ENV_MODE=development``. Runs, SSE and partners add
    theirs (``EXECUTION_PROXY_URL``, ``CHAINABIT_*``) with the slices that use them."""

    port: int = 8787
