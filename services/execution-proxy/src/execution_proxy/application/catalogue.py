"""The catalogue's use cases: change models, prices and margins (internal routes), seed the
development catalogue, and read the catalogue on the request path.

Every execution reads the catalogue, so each replica keeps the loaded aggregate in memory and reloads
it (one query: snapshot and later events) once it is older than ``refresh_seconds``: a change made
on one replica is in force on all of them within that time, and at once on the replica that made it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from execution_proxy.domain.catalogue import GLOBAL, Catalogue, Model
from execution_proxy.domain.pricing import MarginPolicy, Price
from execution_proxy.projections import INLINE
from lf_eventstore import AggregateRepository, CommandRunner, UseCases

REPOSITORY = AggregateRepository(Catalogue, "catalogue", snapshot_every=50)
KEY = "main"
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def _tokens(key: str, provider: str, name: str, max_output: int, provider_model: str | None = None) -> Model:
    return Model(key, provider, provider_model or key, name, "tokens", max_output)


def _image(key: str, name: str, provider: str = "fal") -> Model:
    return Model(key, provider, key, name, "image", max_output_tokens=1)


def _per_1k(per_million: str) -> Decimal:
    return Decimal(per_million) / 1000


# List prices in USD per million tokens (per image for image models) as the providers published them in
# late 2025; a production catalogue is set through the internal routes, never from here.
DEV_MODELS: tuple[tuple[Model, Price], ...] = (
    (
        _tokens("claude-sonnet-4-5", "anthropic", "Claude Sonnet 4.5", 64000),
        Price(
            EPOCH,
            _per_1k("3"),
            _per_1k("15"),
            cache_read_per_1k=_per_1k("0.30"),
            cache_write_per_1k=_per_1k("3.75"),
        ),
    ),
    (
        _tokens("claude-haiku-4-5", "anthropic", "Claude Haiku 4.5", 64000),
        Price(
            EPOCH,
            _per_1k("1"),
            _per_1k("5"),
            cache_read_per_1k=_per_1k("0.10"),
            cache_write_per_1k=_per_1k("1.25"),
        ),
    ),
    (
        _tokens("gpt-4o-mini", "openai", "GPT-4o mini", 16384),
        Price(EPOCH, _per_1k("0.15"), _per_1k("0.60"), cache_read_per_1k=_per_1k("0.075")),
    ),
    (
        _tokens("gpt-4.1", "openai", "GPT-4.1", 32768),
        Price(EPOCH, _per_1k("2"), _per_1k("8"), cache_read_per_1k=_per_1k("0.50")),
    ),
    (
        _tokens("gemini-2.5-flash", "gemini", "Gemini 2.5 Flash", 65536),
        Price(EPOCH, _per_1k("0.30"), _per_1k("2.50"), cache_read_per_1k=_per_1k("0.03")),
    ),
    (
        _tokens("gemini-2.5-pro", "gemini", "Gemini 2.5 Pro", 65536),
        Price(EPOCH, _per_1k("1.25"), _per_1k("10"), cache_read_per_1k=_per_1k("0.125")),
    ),
    (
        _tokens("llama3.2", "ollama", "Llama 3.2 (Ollama)", 8192),
        Price(EPOCH),  # runs on the operator's machine: only the minimum charge
    ),
    (
        # The built-in provider, priced so that charges are visible: 1 credit per 100 input and
        # per 50 output tokens at the default margin.
        _tokens("local-small", "local", "Local (built in)", 4096, provider_model="local"),
        Price(EPOCH, Decimal("0.1"), Decimal("0.2")),
    ),
    (
        _image("fal-ai/flux/schnell", "FLUX.1 [schnell]"),
        Price(EPOCH, per_unit=Decimal("0.003")),
    ),
    (
        _image("fal-ai/flux/dev", "FLUX.1 [dev]"),
        Price(EPOCH, per_unit=Decimal("0.025")),
    ),
    (
        # $30 per million output tokens, 1290 tokens an image (lightning-jobs' GEMINI_IMAGE_MODEL).
        _image("gemini-2.5-flash-image", "Gemini 2.5 Flash Image", provider="gemini"),
        Price(EPOCH, per_unit=Decimal("0.039")),
    ),
)
DEV_MARGIN = MarginPolicy(markup_percent=Decimal(0))


class CatalogueAdmin(UseCases):
    """Changes to the catalogue, one command each on its one stream."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        credits_per_usd: int,
        refresh_seconds: float = 1.0,
        appended: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(CommandRunner(pool, INLINE, appended=appended))
        self.credits_per_usd = credits_per_usd
        self.refresh_seconds = refresh_seconds
        self._loaded: Catalogue | None = None
        self._loaded_at = 0.0
        self._reload = asyncio.Lock()

    async def put_model(self, model: Model, *, metadata: dict[str, Any]) -> bool:
        async def decide(conn: asyncpg.Connection, catalogue: Catalogue) -> bool:
            return catalogue.put_model(model, at=self.clock(), credits_per_usd=self.credits_per_usd)

        return await self._change(decide, metadata)

    async def set_price(self, key: str, price: Price, *, metadata: dict[str, Any]) -> None:
        async def decide(conn: asyncpg.Connection, catalogue: Catalogue) -> None:
            catalogue.set_price(key, price, at=self.clock(), credits_per_usd=self.credits_per_usd)

        await self._change(decide, metadata)

    async def set_policy(self, scope: str, policy: MarginPolicy, *, metadata: dict[str, Any]) -> None:
        async def decide(conn: asyncpg.Connection, catalogue: Catalogue) -> None:
            catalogue.set_policy(scope, policy, at=self.clock(), credits_per_usd=self.credits_per_usd)

        await self._change(decide, metadata)

    async def _change(self, decide: Any, metadata: dict[str, Any]) -> Any:
        result = await self.commands.run(REPOSITORY, KEY, decide, metadata=metadata)
        self._loaded_at = 0.0  # this replica sees its own change at once
        return result

    async def seed(self) -> int:
        """Define the development catalogue if it is empty; returns how many models it defined.
        Replicas starting together may both try: the stream lock makes one of them do it."""

        async def decide(conn: asyncpg.Connection, catalogue: Catalogue) -> int:
            if catalogue.models:
                return 0
            at = self.clock()
            for model, price in DEV_MODELS:
                catalogue.put_model(model, at=at, credits_per_usd=self.credits_per_usd)
                catalogue.set_price(model.key, price, at=at, credits_per_usd=self.credits_per_usd)
            catalogue.set_policy(GLOBAL, DEV_MARGIN, at=at, credits_per_usd=self.credits_per_usd)
            return len(DEV_MODELS)

        return await self._change(decide, {"actor": "execution-proxy:seed"})

    async def current(self) -> Catalogue:
        """The catalogue as of at most ``refresh_seconds`` ago (read-only: never change it)."""
        if self._loaded is not None and time.monotonic() - self._loaded_at < self.refresh_seconds:
            return self._loaded
        async with self._reload:  # one reload however many requests are waiting for it
            if self._loaded is None or time.monotonic() - self._loaded_at >= self.refresh_seconds:
                async with self.commands.connection() as conn:
                    loaded = await REPOSITORY.load(conn, KEY, lock=False)
                self._loaded, self._loaded_at = loaded or Catalogue(), time.monotonic()
        return self._loaded
