from lf_web import ServiceSettings


class PlatformSettings(ServiceSettings):
    """platform-api's settings. Its secrets are the kit's (``PLATFORM_API_KEY``, the JWT secret or
    JWKS): none has a working default outside ``ENV_MODE=development``. Runs, SSE and partners add
    theirs (``EXECUTION_PROXY_URL``, ``CHAINABIT_*``) with the slices that use them."""

    port: int = 8787

    # Live run events (GET /v1/runs/{runId}/events).
    sse_max_connections: int = 5000
    """Event streams one process serves at once; past it, new streams get 503 ``run_events.busy``."""
    sse_keepalive_seconds: float = 15.0
    """A ``: keep-alive`` comment after this long without a frame (seed 001: 15 s)."""
    sse_client_buffer_events: int = 256
    """Events waiting for one slow client; a client further behind is disconnected (it resumes)."""
    sse_retry_after_seconds: int = 5
    run_events_replay_limit: int = 10_000
    """How many of a run's most recent events a stream (re)plays; a cursor older gets ``gap``."""
    run_events_poll_seconds: float = 1.0
    """The listener's fallback poll, should a wake-up be lost."""
