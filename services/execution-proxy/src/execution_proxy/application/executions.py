"""An execution, from a sanitized order to a recorded outcome.

    prepare   model and price from the catalogue, the most the request can cost reserved in the
              payer's wallet (or the caller's own key resolved), the provider chosen
    complete  the provider's whole answer (``ChatStream`` does the same as it arrives)
    record    started and outcome appended in one transaction, with the read model: the charge is
              durable before anyone is answered; the relay then tells the wallet to capture it
              (``execution_settled``) or to release it (``execution_failed``)

Nothing here holds a transaction open while it waits on the wallet or a provider: the only
transaction is the final append. A crash before it leaves the wallet's reservation alone, which
expires and is released; a crash after it is finished by the relay.

An order with a ``reference_id`` (internal callers) is idempotent: its execution id is derived from
the reference, the wallet keeps one reservation per reference, and a retry of an ended execution is
answered from the record without calling the provider again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol
from uuid import UUID, uuid4, uuid5

import asyncpg
import structlog

from execution_proxy.adapters.providers import Providers
from execution_proxy.adapters.providers.base import (
    ChatProvider,
    ChatRequest,
    ProviderError,
    ProviderUsage,
    TextDelta,
    UsageReport,
)
from execution_proxy.adapters.wallet import Reservation, WalletClient
from execution_proxy.application.afterwards import Afterwards
from execution_proxy.application.catalogue import CatalogueAdmin
from execution_proxy.domain import errors, tokens
from execution_proxy.domain.catalogue import Model
from execution_proxy.domain.events import ExecutionStarted
from execution_proxy.domain.execution import CHARGED, Charge, Execution, Funding, charge
from execution_proxy.domain.messages import ChatMessage
from execution_proxy.domain.pricing import Metered, Quote
from execution_proxy.domain.usage import Stated, UsageSource, settle_usage
from execution_proxy.metrics import PROVIDER_ERRORS, PROVIDER_LATENCY, count_recorded
from execution_proxy.projections import INLINE
from lf_contracts.errors import (
    EXECUTE_PROVIDER_FAILED,
    WALLET_RESERVATION_CLOSED,
    WALLET_RESERVATION_NOT_FOUND,
    ApiError,
)
from lf_eventstore import AggregateRepository, CommandRunner, UseCases
from lf_pg import WITHOUT_FLUSH

REPOSITORY = AggregateRepository(Execution, "execution")
REFERENCE_NAMESPACE = UUID("6f0f1a52-7d0e-4c55-9a53-5b0e3f1c2a10")
PROVIDER_FAILED = EXECUTE_PROVIDER_FAILED.code
OUTPUT_RETENTION = timedelta(days=1)
RESERVATION_GONE = frozenset({WALLET_RESERVATION_CLOSED.code, WALLET_RESERVATION_NOT_FOUND.code})

log = structlog.get_logger(__name__)
_RECORDING: set[asyncio.Future[Any]] = set()


async def drain_recordings() -> None:
    """Wait for the stream settlements still running (shutdown: before the pool closes)."""
    while _RECORDING:
        await asyncio.gather(*list(_RECORDING), return_exceptions=True)


"""Streams' outcomes being recorded (``ChatStream.finish``)."""


class KeyResolver(Protocol):
    """The caller's stored keys (``application/keys.py``)."""

    async def resolve(self, lenser_id: UUID, key_id: UUID) -> tuple[str, str]:
        """(provider, secret) of ``key_id`` if ``lenser_id`` owns it and it is active, else
        ``KeyResolutionFailed``."""
        ...


@dataclass(frozen=True, slots=True)
class ChatOrder:
    funding: Funding
    provider: str
    model: str
    messages: tuple[ChatMessage, ...]
    lenser_id: UUID | None = None
    payer_id: UUID | None = None
    """The wallet charged: the lenser's (platform_credit) or the sponsor's (sponsored)."""
    max_tokens: int | None = None
    temperature: float | None = None
    key_id: UUID | None = None
    reference_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChatOutcome:
    execution_id: UUID
    content: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    usage_source: str
    credits_charged: int
    balance_after: int | None
    replayed: bool = False
    """Answered from the record of an earlier attempt with the same reference id."""
    cancelled: bool = False
    """Cut short by its caller's cancel (``application/detached.py``): charged for what it used."""
    cut_short: bool = False
    """The provider did not finish its answer (cancelled, its client gone, the provider breaking off,
    the server stopping): ``content`` is the beginning of an answer, charged for what it used."""
    failed: bool = False
    """Recorded as failed (``record_of`` only: nothing charged, no content)."""


class Order(Protocol):
    """What the record needs of any order, chat or image: who asked, who pays, and how."""

    @property
    def funding(self) -> Funding: ...
    @property
    def lenser_id(self) -> UUID | None: ...
    @property
    def payer_id(self) -> UUID | None: ...
    @property
    def key_id(self) -> UUID | None: ...
    @property
    def reference_id(self) -> str | None: ...


@dataclass(slots=True, kw_only=True)
class Funded:
    """What every execution brings to its record, whatever it runs (``kind``): its order, the model
    and its quote, the money reserved (if any), and when it began. Chat's ``Prepared`` is one and
    ``application.images.PreparedImages`` another: both are recorded by the same ``record_*``."""

    kind: ClassVar[str]
    execution_id: UUID
    order: Order
    model: Model
    quote: Quote | None
    reservation: Reservation | None
    request_id: str
    metadata: dict[str, Any]
    streamed: bool = False
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: float = field(default_factory=time.perf_counter)


@dataclass(slots=True, kw_only=True)
class Prepared(Funded):
    """A chat order ready for its provider: everything decided, the money (if any) reserved."""

    kind: ClassVar[str] = "chat"
    order: ChatOrder
    request: ChatRequest
    provider: ChatProvider
    api_key: str | None
    counted_input: int


class Executions(UseCases):
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        catalogue: CatalogueAdmin,
        providers: Providers,
        wallet: WalletClient,
        keys: KeyResolver | None,
        credits_per_usd: int,
        reservation_ttl_seconds: int,
        appended: Callable[[], None] | None = None,
    ) -> None:
        """``appended``: the process's ``Wakeup.appended``, called after each command commits."""
        super().__init__(CommandRunner(pool, INLINE, recorded=count_recorded, appended=appended))
        self.pool = pool
        self.catalogue = catalogue
        self.providers = providers
        self.wallet = wallet
        self.keys = keys
        self.credits_per_usd = credits_per_usd
        self.reservation_ttl_seconds = reservation_ttl_seconds
        self.afterwards = Afterwards()

    # --- before the provider -----------------------------------------------------------------

    def execution_id(self, order: ChatOrder) -> UUID:
        return execution_id_of(order)

    async def prepare(
        self,
        order: ChatOrder,
        *,
        request_id: str,
        metadata: dict[str, Any],
        claim: Callable[[UUID, str], Awaitable[None]] | None = None,
    ) -> Prepared | ChatOutcome:
        """The order ready to run, or (a retried reference) the outcome it already had. ``claim``
        (orders with a reference): called with the execution id and the reference once no record
        answers it, before anything is reserved; it raises to refuse (a cancelled reference)."""
        execution_id = self.execution_id(order)
        if order.reference_id is not None:
            if (earlier := await self.recorded(execution_id)) is not None:
                return earlier
            if claim is not None:
                await claim(execution_id, order.reference_id)
        catalogue = await self.catalogue.current()
        model = catalogue.model(order.model, order.provider)
        if model.unit_type != "tokens":
            raise errors.ModelNotFound(order.model)  # an image model is executed by /execute/image
        provider, api_key = await self._provider_and_key(order)
        max_tokens = min(order.max_tokens or model.max_output_tokens, model.max_output_tokens)
        counted_input = tokens.count_prompt(message.content for message in order.messages)
        quote, reservation = None, None
        if order.funding in CHARGED:
            quote = catalogue.quote(model.key, self.clock(), self.credits_per_usd)
            most = quote.most(counted_input, max_tokens)
            assert order.payer_id is not None, "a charged order names its payer"
            reservation = await self.wallet.reserve(
                order.payer_id,
                most,
                reference_id=str(execution_id),
                ttl_seconds=self.reservation_ttl_seconds,
                request_id=request_id,
            )
        request = ChatRequest(model.provider_model, order.messages, max_tokens, order.temperature)
        return Prepared(
            execution_id=execution_id,
            order=order,
            model=model,
            quote=quote,
            reservation=reservation,
            request_id=request_id,
            metadata=metadata,
            request=request,
            provider=provider,
            api_key=api_key,
            counted_input=counted_input,
        )

    async def _provider_and_key(self, order: ChatOrder) -> tuple[ChatProvider, str | None]:
        provider = self.providers.chat.get(order.provider)
        if provider is None:
            raise errors.ModelNotFound(order.model)
        if order.funding == "user_byok_cloud":
            if self.keys is None or order.key_id is None or order.lenser_id is None:
                raise errors.KeyResolutionFailed()
            key_provider, secret = await self.keys.resolve(order.lenser_id, order.key_id)
            if key_provider != order.provider:
                raise errors.ProviderMismatch(order.provider, key_provider)
            return provider, secret
        if not self.providers.has_platform_key(order.provider):
            raise errors.UnsupportedProvider(order.provider)
        return provider, self.providers.platform_key(order.provider)

    # --- the provider ------------------------------------------------------------------------

    async def complete(self, prepared: Prepared) -> ChatOutcome:
        sent = time.perf_counter()
        try:
            completion = await prepared.provider.complete(prepared.request, prepared.api_key)
        except ProviderError as failure:
            raise await self.provider_failed(prepared, failure, sent) from None
        except BaseException as interruption:
            await self.interrupted(prepared, interruption)
            raise
        PROVIDER_LATENCY.labels(prepared.model.provider, "ok").observe(time.perf_counter() - sent)
        return await self.record_success(
            prepared,
            completion.content,
            completion.usage,
            counted_output=tokens.count_text(completion.content),
            client_disconnected=False,
        )

    def stream(self, prepared: Prepared) -> ChatStream:
        return ChatStream(self, prepared)

    # --- the record --------------------------------------------------------------------------

    async def record_success(
        self,
        prepared: Prepared,
        content: str,
        stated: ProviderUsage | None,
        *,
        counted_output: int,
        client_disconnected: bool,
        cancelled: bool = False,
        cut_short: bool = False,
    ) -> ChatOutcome:
        used, source = settle_usage(
            _stated(stated), counted_input=prepared.counted_input, counted_output=counted_output
        )
        kept = {"content": content} if prepared.order.reference_id is not None else None
        charged = await self.record_use(
            prepared,
            used,
            source,
            client_disconnected=client_disconnected,
            cancelled=cancelled,
            cut_short=cut_short,
            kept=kept,
        )
        if charged is None:
            earlier = await self.recorded(prepared.execution_id)
            assert earlier is not None
            return earlier
        return _outcome(
            prepared, content, used, source, charged.credits, cancelled=cancelled, cut_short=cut_short
        )

    async def record_use(
        self,
        funded: Funded,
        used: Metered,
        source: UsageSource,
        *,
        client_disconnected: bool = False,
        cancelled: bool = False,
        cut_short: bool = False,
        kept: dict[str, Any] | None = None,
    ) -> Charge | None:
        """Started and succeeded appended in one transaction (with ``kept``, the answer a retried
        reference is given); the charge, or None when another attempt with the same reference
        recorded the execution first."""
        reserved = funded.reservation.amount if funded.reservation else 0
        charged = charge(funded.quote, used, reserved=reserved)
        latency_ms = int((time.perf_counter() - funded.started) * 1000)

        async def decide(conn: asyncpg.Connection, execution: Execution) -> Charge | None:
            if execution.ended:
                return None  # another attempt with the same reference recorded it first
            execution.succeed(
                _started(funded),
                used,
                source,
                charged,
                latency_ms=latency_ms,
                client_disconnected=client_disconnected,
                at=self.clock(),
                cancelled=cancelled,
                cut_short=cut_short,
            )
            if kept is not None:
                await _keep_output(conn, funded.execution_id, kept)
            return charged

        if funded.reservation is None and funded.order.reference_id is None:
            # No money moved and no retry will ask: recorded once the caller has its answer.
            self.afterwards.add(
                lambda: self.commands.run(REPOSITORY, funded.execution_id, decide, metadata=funded.metadata),
                what=f"execution {funded.execution_id}",
            )
            return charged
        return await self.commands.run(REPOSITORY, funded.execution_id, decide, metadata=funded.metadata)

    async def record_failure(self, funded: Funded, code: str, reason: str) -> None:
        async def decide(conn: asyncpg.Connection, execution: Execution) -> None:
            if not execution.ended:
                execution.fail(_started(funded), code=code, reason=reason, at=self.clock())

        await self.commands.run(REPOSITORY, funded.execution_id, decide, metadata=funded.metadata)

    async def interrupted(self, funded: Funded, interruption: BaseException) -> None:
        """A buffered call cancelled (a shutdown) or broken by a bug while the provider ran: nothing
        reached the caller, so the reservation is released now rather than held until it expires."""
        await asyncio.shield(self.record_failure(funded, "interrupted", type(interruption).__name__))

    async def provider_failed(self, funded: Funded, failure: ProviderError, sent: float) -> ApiError:
        """A buffered call's provider failure observed and recorded (nothing charged, the
        reservation released); returns the 502 to raise."""
        _observe_failure(funded, failure, sent)
        await self.record_failure(funded, PROVIDER_FAILED, str(failure))
        return ApiError(EXECUTE_PROVIDER_FAILED, str(failure))

    async def prune_outputs(self) -> int:
        """Forget answers kept for retries once a day old, and the starts and cancels of detached
        executions (``execution_controls``) as old; returns how many answers went. Without waiting
        for the WAL flush: rows a server crash brings back go at the next run."""
        return await self.pool.fetchval(
            "WITH controls AS (DELETE FROM execution_controls WHERE created_at < now() - $1::interval),"
            " gone AS (DELETE FROM execution_outputs WHERE recorded_at < now() - $1::interval"
            " RETURNING 1)"
            f" SELECT count(*), {WITHOUT_FLUSH} FROM gone",
            OUTPUT_RETENTION,
        )

    async def recorded(self, execution_id: UUID) -> ChatOutcome | None:
        """An ended execution as its caller was answered (without content once that was pruned)."""
        outcome = await self.record_of(execution_id)
        if outcome is not None:
            refuse_failed(failed=outcome.failed, cancelled=outcome.cancelled)
        return outcome

    async def record_row(self, execution_id: UUID) -> asyncpg.Record | None:
        """An ended execution's row (chat or image), with ``output``: the answer kept for retries
        (None once pruned, or never kept)."""
        return await self.pool.fetchrow(
            "SELECT e.*, o.output FROM executions e LEFT JOIN execution_outputs o USING (execution_id)"
            " WHERE execution_id = $1",
            execution_id,
        )

    async def record_of(self, execution_id: UUID) -> ChatOutcome | None:
        """An ended execution's record, failed or not (a failure: nothing charged, no content)."""
        row = await self.record_row(execution_id)
        if row is None:
            return None
        output = row["output"]
        return ChatOutcome(
            execution_id=execution_id,
            content=output["content"] if output else "",
            provider=row["provider"],
            model=row["model"],
            input_tokens=row["input_tokens"] + row["cache_read_tokens"] + row["cache_write_tokens"],
            output_tokens=row["output_tokens"],
            usage_source=row["usage_source"],
            credits_charged=row["credits_charged"],
            balance_after=None,
            replayed=True,
            cancelled=row["cancelled"],
            cut_short=row["cut_short"],
            failed=row["status"] == "failed",
        )


class ChatStream:
    """A provider's stream as it reaches the client, settled however it ends.

    Iterate it for the text; then ``finish`` (always: ``async with`` does it, even when the reading
    task is cancelled) records the outcome, once. What is charged:

    - an answer the provider finished: its stated usage (counted where it stated none);
    - a stream cut short after some text, by the client leaving (``client_gone``), the provider
      breaking off, or the server stopping: the input plus the output produced so far, the
      provider's count where it stated one, else ours; the client received that text, and the
      provider bills it to us. Never zero, never more than the reservation (``charge`` caps it);
    - a client that left before the first text: the input alone, since the provider was asked
      and bills the prompt;
    - a stream its caller cancelled (``cancel``: detached internal executions) is settled as one
      whose client left, and recorded ``cancelled`` (failed with code ``cancelled`` when the
      provider had not been asked: nothing charged);
    - a provider failure (or anything else) before the first text: nothing (recorded as failed;
      the wallet releases the reservation).

    Stopping the provider is closing its stream (``finish`` does it; a reader cancelled while
    waiting on the provider closes it on the way out), which closes the provider's connection.
    A reservation is kept alive while the stream runs, every half of its time to live, until the
    wallet's hard lifetime closes it (then the settlement charges it late: nothing is lost).
    """

    def __init__(self, executions: Executions, prepared: Prepared) -> None:
        self.executions, self.prepared = executions, prepared
        self.pieces: list[str] = []
        self.stated: ProviderUsage | None = None
        self.failure: ProviderError | None = None
        self.completed = False
        """The provider ended its answer (as opposed to failing or being stopped)."""
        self.disconnected = False
        self.cancelled = False
        """Its caller cancelled it (and the provider had not finished by then)."""
        self.outcome: ChatOutcome | None = None
        self._source: AsyncIterator[Any] | None = None
        self._sent = 0.0
        self._keepalive: asyncio.Task[None] | None = None
        self._finishing: asyncio.Future[ChatOutcome | None] | None = None
        prepared.streamed = True

    async def __aenter__(self) -> ChatStream:
        if self.prepared.reservation is not None:
            self._keepalive = asyncio.create_task(self._keep_reservation_alive())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.finish()

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> str:
        """The next text; the provider is called on the first one."""
        prepared = self.prepared
        if self._source is None:
            if self.cancelled:
                raise StopAsyncIteration  # cancelled before its first read: the provider is never asked
            self._sent = time.perf_counter()
            self._source = prepared.provider.stream(prepared.request, prepared.api_key).__aiter__()
        while not (self.completed or self.failure or self.disconnected or self.cancelled or self._finishing):
            try:
                item = await anext(self._source)
            except StopAsyncIteration:
                self.completed = True
                latency = time.perf_counter() - self._sent
                PROVIDER_LATENCY.labels(prepared.model.provider, "ok").observe(latency)
            except ProviderError as failure:
                self.failure = failure
                _observe_failure(prepared, failure, self._sent)
            else:
                if isinstance(item, UsageReport):
                    self.stated = item.usage
                elif isinstance(item, TextDelta) and item.text:
                    self.pieces.append(item.text)
                    return item.text
        raise StopAsyncIteration

    async def client_gone(self) -> None:
        """The client went away (or its connection was closed under it): what it was sent is
        charged, and the provider is stopped (now, if the stream is not being read at this moment;
        else by ``finish``). Marked before anything is awaited."""
        self.disconnected = True
        await self._close_source()

    def cancel(self) -> bool:
        """Its caller cancelled it: settled as a stream whose client left (what was produced is
        charged), and recorded as cancelled; False when it had ended already (left as it was).
        The provider is stopped by ``finish``; a reader waiting on it right now is cancelled by its
        owner (``application/detached.py``), which closes it on the way out."""
        if self.completed or self.failure is not None or self.cancelled or self._finishing is not None:
            return False
        self.cancelled = True
        return True

    async def finish(self) -> ChatOutcome | None:
        """Record the outcome, once, whoever asks and however often; ``None`` when nothing is
        charged. The recording runs shielded: a caller cancelled meanwhile (the server shutting
        down) does not stop it."""
        if self._finishing is None:
            self._finishing = asyncio.ensure_future(self._record())
            # Held until done: a task nobody references may be collected mid-way (asyncio keeps
            # weak references only), and a cancelled caller may drop this stream meanwhile.
            _RECORDING.add(self._finishing)
            self._finishing.add_done_callback(_RECORDING.discard)
        return await asyncio.shield(self._finishing)

    async def _record(self) -> ChatOutcome | None:
        await self._close_source()
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(BaseException):  # whatever ended it, the outcome is recorded
                await self._keepalive
        asked = self._source is not None
        stopped = self.disconnected or self.cancelled
        # A client that left (or a caller that cancelled) once the provider was asked pays for the
        # prompt, unless the provider failed: then nothing was produced, whoever left.
        charged_for_input = stopped and asked and self.failure is None
        if not self.pieces and not self.completed and not charged_for_input:
            if self.failure is not None:
                code, reason = PROVIDER_FAILED, str(self.failure)
            elif self.cancelled:
                code, reason = "cancelled", "cancelled before the provider was asked"
            elif self.disconnected:
                code, reason = "client_disconnected", "the client went away before the provider was asked"
            else:
                code, reason = "interrupted", "the stream was stopped before its first token"
            await self.executions.record_failure(self.prepared, code, reason)
            return None
        self.outcome = await self.executions.record_success(
            self.prepared,
            "".join(self.pieces),
            self.stated,  # adapters state an output count only when it is final (base.ProviderUsage)
            counted_output=tokens.count_streamed(self.pieces),
            client_disconnected=self.disconnected,
            cancelled=self.cancelled and not self.completed,
            # The server stopping (``drain``), a client gone, a cancel, the provider breaking off:
            # recorded and charged like an answer, but a retry must not take it for one.
            cut_short=not self.completed,
        )
        return self.outcome

    async def _close_source(self) -> None:
        source = self._source
        if source is not None and hasattr(source, "aclose"):
            # A generator being read right now cannot be closed from here ("already running"):
            # its reader is cancelled instead (stream_sse), which closes it on the way out.
            with contextlib.suppress(Exception):
                await source.aclose()

    async def _keep_reservation_alive(self) -> None:
        reservation = self.prepared.reservation
        assert reservation is not None
        ttl = self.executions.reservation_ttl_seconds
        while True:
            await asyncio.sleep(ttl / 2)
            try:
                await self.executions.wallet.extend(
                    reservation.reservation_id, ttl_seconds=ttl, request_id=self.prepared.request_id
                )
            except Exception as refused:  # noqa: BLE001 - a keep-alive never takes the settlement down
                if not isinstance(refused, ApiError):
                    log.warning("reservation.extend_failed", error=type(refused).__name__)
                    continue
                # Past its hard lifetime (closed), or the wallet is away: the settlement still
                # charges it (the wallet charges an expired reservation late, never loses it).
                log.warning(
                    "reservation.not_extended",
                    reservation_id=str(reservation.reservation_id),
                    code=refused.error.code,
                )
                if refused.error.code in RESERVATION_GONE:
                    return  # it will not come back: stop asking


def referenced_execution_id(
    funding: str,
    payer_id: UUID | None,
    lenser_id: UUID | None,
    reference_id: str,
    namespace: UUID = REFERENCE_NAMESPACE,
) -> UUID:
    """The execution id of an order with a reference: the same for every retry of it. Each kind
    of execution names its references in a ``namespace`` of its own (images: another one), so a
    chat reference never names an image."""
    owner = payer_id or lenser_id or "service"
    return uuid5(namespace, f"{funding}:{owner}:{reference_id}")


def execution_id_of(order: Order, namespace: UUID = REFERENCE_NAMESPACE) -> UUID:
    """An order's execution id: derived from its reference (``referenced_execution_id``), or new."""
    if order.reference_id is None:
        return uuid4()
    return referenced_execution_id(
        order.funding, order.payer_id, order.lenser_id, order.reference_id, namespace
    )


def refuse_failed(*, failed: bool, cancelled: bool) -> None:
    """A retried reference whose execution ended without an answer is refused as it ended:
    ``ExecutionCancelled`` (cancelled before its provider was asked) or a provider failure."""
    if not failed:
        return
    if cancelled:
        raise errors.ExecutionCancelled()
    raise ApiError(EXECUTE_PROVIDER_FAILED, "an earlier attempt with this reference failed")


def _observe_failure(funded: Funded, failure: ProviderError, sent: float) -> None:
    kind = "timeout" if failure.__class__.__name__ == "ProviderTimeout" else str(failure.status or "error")
    PROVIDER_ERRORS.labels(funded.model.provider, kind).inc()
    PROVIDER_LATENCY.labels(funded.model.provider, "error").observe(time.perf_counter() - sent)


def _stated(usage: ProviderUsage | None) -> Stated | None:
    if usage is None:
        return None
    return Stated(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_write_tokens=usage.cache_creation_input_tokens,
        cache_read_tokens=usage.cache_read_input_tokens,
    )


def _started(funded: Funded) -> ExecutionStarted:
    order, reservation = funded.order, funded.reservation
    return ExecutionStarted(
        execution_id=funded.execution_id,
        lenser_id=order.lenser_id,
        funding=order.funding,
        payer_id=order.payer_id if order.funding in CHARGED else None,
        kind=funded.kind,
        provider=funded.model.provider,
        model=funded.model.key,
        streamed=funded.streamed,
        reference_id=order.reference_id,
        reservation_id=reservation.reservation_id if reservation else None,
        reserved_credits=reservation.amount if reservation else 0,
        key_id=order.key_id,
        started_at=funded.started_at,
    )


def _outcome(
    prepared: Prepared,
    content: str,
    used: Metered,
    source: UsageSource,
    credits: int,
    *,
    cancelled: bool = False,
    cut_short: bool = False,
) -> ChatOutcome:
    reservation = prepared.reservation
    balance_after = None
    if reservation is not None and reservation.available_balance is not None:
        balance_after = reservation.available_balance + reservation.amount - credits
    return ChatOutcome(
        execution_id=prepared.execution_id,
        content=content,
        provider=prepared.model.provider,
        model=prepared.model.key,
        input_tokens=used.input_tokens + used.cache_read_tokens + used.cache_write_tokens,
        output_tokens=used.output_tokens,
        usage_source=source,
        credits_charged=credits,
        balance_after=balance_after,
        cancelled=cancelled,
        cut_short=cut_short,
    )


async def _keep_output(conn: asyncpg.Connection, execution_id: UUID, output: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO execution_outputs (execution_id, output) VALUES ($1, $2)"
        " ON CONFLICT (execution_id) DO NOTHING",
        execution_id,
        output,
    )
