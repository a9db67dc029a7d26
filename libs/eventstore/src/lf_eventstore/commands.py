"""How commands run: one aggregate, one PostgreSQL transaction of four round trips.

1. ``BEGIN``.
2. One read (``command_load``, migrations/0003): lock the aggregate's stream row, then read its
   snapshot, the events after it, the facts the command names (its service's lookups in the inline
   read models: an idempotency key, a reservation) and the transaction's time.
3. Decide in memory: the aggregate (or a new one from the command's factory) records its events.
4. One write: the append and the inline projections' statements composed into one statement
   (``lf_pg.compose``), so the events and their read models commit together or not at all.
5. ``COMMIT``.

Group commit (``submit``): concurrent commands on the same stream in one process queue behind one
leader, which takes them in arrival order as one batch: one lock, one read, each command decided in
turn on the same aggregate, one write, one commit. A command refused by its rules (its ``decide``
raises) is answered with that refusal and leaves the others as they are (the aggregate is rebuilt
without it if it recorded anything before refusing). When the batch's transaction fails (the
connection dropped, the database went away), every command of it is retried alone, so one bad
command or one failed commit costs the others a retry, never their outcome. Commands must be
idempotent under that retry (a commit whose answer was lost may have happened): the wallet's are,
by reference id, idempotency key or state. Two commands that name the same fact never share a
batch: one may write what the other reads (two reserves of one reference id: the second must see
the first's reservation), so the later one waits for the next batch.

A command whose decision reads the database itself (``run``: ``decide(conn, aggregate)``) runs in a
transaction of its own, read and write as above plus whatever it reads. Bound to a connection
(``on(conn)``: a message consumer, a delivery processor) a command is a savepoint in the caller's
transaction, so its effects commit with the caller's inbox row or checkpoint; the caller's commit
is then the one readers are told of. ``on(conn, savepoints=False)`` leaves out the savepoint (two
statements fewer) for a caller whose transaction holds nothing else worth keeping when a command
fails (the delivery processor, one delivery per transaction): a command's failure, a lost race to
create a stream included, then aborts the caller's whole transaction, which the caller retries.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, Self, TypeVar

import asyncpg

from lf_eventstore.aggregate import Aggregate
from lf_eventstore.repository import AggregateRepository
from lf_eventstore.store import ConcurrencyError, NewEvent, RecordedEvent, append_statements, appended
from lf_eventstore.wakeup import note_append
from lf_pg import Statement, compose

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")

BATCH_LIMIT = 256
"""At most this many commands in one transaction: a bound on the write statement's arrays and on
how long the stream's lock is held."""


class InlineProjection(Protocol):
    """``lf_projections.Projection``: one whose ``writes`` is set is composed into the command's
    write; any other is applied after it (``apply``, a round trip or more)."""

    async def apply(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Facts:
    """What a command reads besides its aggregate, looked up after the stream is locked.

    ``sql`` is the service's lookup, run with ``needs`` (as JSON) for ``$1``; it answers one JSON
    value, which the command's ``decide`` gets as ``Decision.facts``. ``needs`` maps names to lists
    of keys (reservation ids, reference ids) or to a scalar every command on the stream shares (the
    wallet's owner): commands batched together have their lists joined, and two naming the same key
    are not batched together."""

    sql: str
    needs: Mapping[str, Any]
    parse: Callable[[Any], Any] = lambda found: found
    """Turns what ``sql`` answered into what ``decide`` reads, once per batch."""

    def keys(self) -> set[tuple[str, str]]:
        return {
            (name, str(key)) for name, keys in self.needs.items() if isinstance(keys, list) for key in keys
        }


@dataclass(frozen=True, slots=True)
class KeyLookup:
    """A stream known only by something it owns (a reservation id): ``sql`` answers the stream's key
    from the command's facts' ``needs`` (``$1``), and ``missing`` is raised when it finds none."""

    sql: str
    missing: Callable[[], Exception]


@dataclass(frozen=True, slots=True)
class Decision:
    """What a command decides with besides its aggregate: the transaction's time (the database's,
    one clock for every replica) and what its ``Facts`` looked up, parsed (``None`` without; in a
    batch, what all its commands' facts looked up)."""

    now: datetime
    facts: Any


@dataclass(frozen=True)
class Command(Generic[A, T]):
    """A command the runner may decide together with others on the same stream.

    ``decide`` is pure: it acts on the aggregate with the ``Decision`` and returns the command's
    result; whatever the aggregate recorded is saved. Without a stream the aggregate comes from
    ``new`` (by default an empty one; a factory that raises refuses commands on aggregates that do
    not exist). ``alone`` commands are decided in a transaction of their own (they read what any
    other command may write, e.g. every reservation that is due)."""

    repository: AggregateRepository[A]
    key: object | KeyLookup
    decide: Callable[[Decision, A], T]
    metadata: dict[str, Any]
    new: Callable[[], A] | None = None
    facts: Facts | None = None
    alone: bool = False


@dataclass
class _Pending:
    command: Command[Any, Any]
    future: asyncio.Future[Any]


@dataclass
class _Loaded:
    """What ``command_load`` answered: the stream's head, the events after its snapshot, the facts."""

    stream_id: str | None
    version: int
    snapshot: dict[str, Any] | None
    snapshot_version: int
    tail: list[list[Any]]
    facts: Any
    now: datetime
    exists: bool

    def aggregate(self, repository: AggregateRepository[A], new: Callable[[], A] | None = None) -> A:
        """The stored aggregate; for a stream with no events yet, the one ``new`` makes."""
        if not self.exists:
            return (new or repository.aggregate_type)()
        return repository.from_stored(self.snapshot, self.snapshot_version, self.tail)


_LOAD = "SELECT * FROM command_load($1, $2, $3, $4::jsonb)"


async def _load(
    conn: asyncpg.Connection,
    stream_id: str | None,
    *,
    key_sql: str | None = None,
    facts: Facts | None = None,
    needs: Mapping[str, Any] | None = None,
) -> _Loaded:
    row = await conn.fetchrow(
        _LOAD,
        stream_id,
        key_sql,
        facts.sql if facts else None,
        dict(needs if needs is not None else facts.needs if facts else {}),
    )
    return _Loaded(
        row["found_stream_id"],
        row["head_version"] or 0,
        row["head_snapshot"],
        row["snapshot_version"] or 0,
        row["tail"] or [],
        row["facts"],
        row["command_time"],
        row["head_version"] is not None,
    )


@dataclass
class CommandRunner:
    pool: asyncpg.Pool
    inline: Sequence[InlineProjection] = ()
    clock: Callable[[], datetime] = utc_now
    conn: asyncpg.Connection | None = None
    recorded: Callable[[list[RecordedEvent]], None] | None = None
    """Told of each command's events when it completes (metrics; inside a caller's transaction,
    before that transaction commits)."""
    appended: Callable[[], None] | None = None
    """Called after each transaction of the runner's own that appended events has committed
    (``Wakeup.appended``: this process's readers at once, other processes' throttled). In a caller's
    transaction (``on(conn)``, ``save``) the append is only noted (``note_append``): its owner wakes
    readers after its own COMMIT."""
    savepoints: bool = True
    """Bound to a connection, each command is a savepoint of the caller's transaction (False: not)."""
    _queues: dict[str, deque[_Pending]] = field(default_factory=dict, repr=False)
    _leaders: dict[str, asyncio.Task[None]] = field(default_factory=dict, repr=False)

    def on(self, conn: asyncpg.Connection, *, savepoints: bool = True) -> Self:
        return replace(self, conn=conn, savepoints=savepoints, _queues={}, _leaders={})

    def _transaction(self, conn: asyncpg.Connection) -> contextlib.AbstractAsyncContextManager[object]:
        """The command's transaction: its own, a savepoint of the caller's, or the caller's as it is."""
        if self.conn is not None and not self.savepoints:
            return contextlib.nullcontext()
        return conn.transaction()

    def _may_retry(self, attempt: int) -> bool:
        """A ConcurrencyError is retried in place, unless it aborted a caller's transaction."""
        return attempt < 2 and (self.conn is None or self.savepoints)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        if self.conn is not None:
            yield self.conn
        else:
            async with self.pool.acquire() as conn:
                yield conn

    # --- pure commands, group-committed -------------------------------------------------------

    async def submit(self, command: Command[A, T]) -> T:
        """Decide ``command`` (with whatever else is queued on its stream) and return its result,
        or raise its refusal, once its transaction has committed."""
        pending = _Pending(command, asyncio.get_running_loop().create_future())
        if self.conn is not None or command.alone or isinstance(command.key, KeyLookup):
            await self._decide([pending])
            return pending.future.result()
        stream_id = command.repository.stream_id(command.key)
        self._queues.setdefault(stream_id, deque()).append(pending)
        if stream_id not in self._leaders:
            self._leaders[stream_id] = asyncio.create_task(
                self._lead(stream_id), name=f"commands:{stream_id}"
            )
        return await pending.future

    async def _lead(self, stream_id: str) -> None:
        """Decide the stream's queued commands, one batch per transaction, until none is left."""
        queue = self._queues[stream_id]
        batch: list[_Pending] = []
        try:
            while batch := take_batch(queue):
                await self._decide(batch)
                # Let the callers just answered run first: a caller in a loop submits its next
                # command at once, and it should join the next batch rather than wait for another.
                await asyncio.sleep(0)
        finally:
            for pending in (*batch, *queue):  # only when cancelled (shutdown): nobody will answer them
                if not pending.future.done():
                    pending.future.cancel()
            del self._leaders[stream_id]
            del self._queues[stream_id]

    async def _decide(self, batch: list[_Pending]) -> None:
        """Run ``batch`` in one transaction; if that fails, each command alone. Answers every future."""
        try:
            await self._transact(batch)
        except Exception as failure:  # noqa: BLE001 - any failure of the batch: each is retried alone
            if len(batch) == 1:
                _answer(batch[0], failure, ok=False)
                return
            for pending in batch:
                try:
                    await self._transact([pending])
                except Exception as alone_failure:  # noqa: BLE001 - its caller gets it
                    _answer(pending, alone_failure, ok=False)

    async def _transact(self, batch: list[_Pending]) -> None:
        first = batch[0].command
        repository = first.repository
        key_sql = None
        if isinstance(first.key, KeyLookup):
            key_sql = f"SELECT '{repository.stream_prefix}-' || ({first.key.sql})"
            stream_id = None
        else:
            stream_id = repository.stream_id(first.key)
        facts = [p.command.facts for p in batch if p.command.facts is not None]
        for attempt in range(3):
            try:
                async with self.connection() as conn, self._transaction(conn):
                    loaded = await _load(
                        conn,
                        stream_id,
                        key_sql=key_sql,
                        facts=facts[0] if facts else None,
                        needs=_joined(facts),
                    )
                    if isinstance(first.key, KeyLookup) and loaded.stream_id is None:
                        raise first.key.missing()
                    aggregate, outcomes, metadata = self._decide_in_memory(loaded, batch)
                    recorded = await self._write(conn, repository, loaded, aggregate, metadata)
                break
            except ConcurrencyError:
                if not self._may_retry(attempt):
                    raise
        self._committed(recorded)
        for pending, outcome, ok in outcomes:
            _answer(pending, outcome, ok=ok)

    def _decide_in_memory(
        self, loaded: _Loaded, batch: list[_Pending]
    ) -> tuple[Aggregate, list[tuple[_Pending, Any, bool]], list[dict[str, Any]]]:
        """Each command in turn on one aggregate; a refused one leaves no trace in it. On a stream
        that does not exist yet, each command meets its own factory until one of them records."""
        repository = batch[0].command.repository
        facts = next((p.command.facts for p in batch if p.command.facts is not None), None)
        decision = Decision(loaded.now, facts.parse(loaded.facts) if facts else None)
        aggregate = loaded.aggregate(repository) if loaded.exists else repository.aggregate_type()
        outcomes: list[tuple[_Pending, Any, bool]] = []
        metadata: list[dict[str, Any]] = []
        for pending in batch:
            command = pending.command
            before = len(aggregate.pending())
            try:
                if aggregate.is_new and command.new is not None:
                    aggregate = command.new()
                result = command.decide(decision, aggregate)
            except Exception as refusal:  # noqa: BLE001 - a refusal is that command's answer
                outcomes.append((pending, refusal, False))
                if len(aggregate.pending()) != before:  # it recorded something, then refused
                    accepted = aggregate.pending()[:before]
                    aggregate = loaded.aggregate(repository) if loaded.exists else repository.aggregate_type()
                    for event in accepted:
                        aggregate._record(event)
                continue
            outcomes.append((pending, result, True))
            metadata.extend([command.metadata] * (len(aggregate.pending()) - before))
        return aggregate, outcomes, metadata

    # --- commands that read the database themselves ----------------------------------------

    async def run(
        self,
        repository: AggregateRepository[A],
        key: object | Callable[[asyncpg.Connection], Awaitable[object]],
        decide: Callable[[asyncpg.Connection, A], Awaitable[T]],
        *,
        metadata: dict[str, Any],
        new: Callable[[], A] | None = None,
    ) -> T:
        """``decide`` acts on the aggregate, reading what it needs on the command's connection, and
        returns only the command's result; whatever the aggregate recorded is saved. ``key`` may be
        a lookup run on the command's connection (e.g. the owner of a reservation)."""
        # A ConcurrencyError can only come from two commands creating the same new stream at once
        # (an existing stream is locked before deciding): the loser retries and finds it.
        for attempt in range(3):
            try:
                async with self.connection() as conn, self._transaction(conn):
                    stream_key = await key(conn) if callable(key) else key
                    loaded = await _load(conn, repository.stream_id(stream_key))
                    aggregate = loaded.aggregate(repository, new)
                    result = await decide(conn, aggregate)
                    metadata_each = [metadata] * len(aggregate.pending())
                    recorded = await self._write(conn, repository, loaded, aggregate, metadata_each)
                self._committed(recorded)
                return result
            except ConcurrencyError:
                if not self._may_retry(attempt):
                    raise
        raise AssertionError("unreachable")

    async def save(
        self,
        conn: asyncpg.Connection,
        repository: AggregateRepository[A],
        key: object,
        aggregate: A,
        *,
        metadata: dict[str, Any],
    ) -> list[RecordedEvent]:
        """Append what ``aggregate`` (loaded by the caller, its stream locked) recorded and apply the
        inline projections to it, in the caller's transaction on ``conn``."""
        if not aggregate.pending():
            return []
        events, snapshot = repository.to_store(aggregate)
        # The statements projections write need the events' time (the transaction's): ask for it
        # only then.
        now = await conn.fetchval("SELECT now()") if any(_writes(p) for p in self.inline) else None
        recorded = await self._append(
            conn, repository.stream_id(key), now, aggregate, events, snapshot, [metadata] * len(events)
        )
        note_append()  # the caller's transaction: its owner wakes readers once it has committed
        return recorded

    # --- the write ---------------------------------------------------------------------------

    async def _write(
        self,
        conn: asyncpg.Connection,
        repository: AggregateRepository[A],
        loaded: _Loaded,
        aggregate: A,
        metadata: list[dict[str, Any]],
    ) -> list[RecordedEvent]:
        if not aggregate.pending():
            return []
        events, snapshot = repository.to_store(aggregate)
        assert loaded.stream_id is not None  # known, or found by its KeyLookup (else refused)
        return await self._append(conn, loaded.stream_id, loaded.now, aggregate, events, snapshot, metadata)

    async def _append(
        self,
        conn: asyncpg.Connection,
        stream_id: str,
        now: datetime | None,
        aggregate: Aggregate,
        events: list[NewEvent],
        snapshot: dict[str, Any] | None,
        metadata: list[dict[str, Any]],
    ) -> list[RecordedEvent]:
        """The append and the inline projections' writes in one statement; projections that cannot
        say their writes as statements are applied after it, one round trip each."""
        before = aggregate.version
        statements = append_statements(stream_id, before, events, metadata=metadata, snapshot=snapshot)
        # The rows the append will insert, as the projections see them: ``recorded_at`` is the
        # transaction's time (the column's default), ``position`` is not known yet.
        upcoming = [
            RecordedEvent(0, 0, stream_id, before + n, e.event_id, e.type, e.data, meta, now)  # type: ignore[arg-type]
            for n, (e, meta) in enumerate(zip(events, metadata, strict=True), start=1)
        ]
        for projection in self.inline:
            if (writes := _writes(projection)) is not None:
                statements.extend(writes(upcoming))
        write = compose(statements, answer="appended")
        recorded = appended(stream_id, before, await conn.fetch(write.sql, *write.args), events)
        for projection in self.inline:
            if _writes(projection) is None:
                await projection.apply(conn, recorded)
        aggregate.saved(before + len(events))
        return recorded

    def _committed(self, recorded: list[RecordedEvent]) -> None:
        if self.recorded is not None:
            self.recorded(recorded)
        if not recorded:
            return
        if self.conn is not None:
            note_append()  # a savepoint of the caller's transaction, not committed yet
        elif self.appended is not None:
            self.appended()


def take_batch(queue: deque[_Pending], limit: int = BATCH_LIMIT) -> list[_Pending]:
    """The next batch from the front of ``queue``, in arrival order: as many commands as share no
    fact key (and the same facts lookup), up to ``limit``; commands whose caller left are dropped."""
    batch: list[_Pending] = []
    keys: set[tuple[str, str]] = set()
    lookup: str | None = None
    while queue and len(batch) < limit:
        pending = queue[0]
        if pending.future.cancelled():
            queue.popleft()
            continue
        facts = pending.command.facts
        if facts is not None:
            if facts.keys() & keys or (lookup is not None and facts.sql != lookup):
                break
            keys |= facts.keys()
            lookup = facts.sql
        batch.append(queue.popleft())
    return batch


def _joined(facts: list[Facts]) -> dict[str, Any]:
    """The needs of a batch's commands: their lists joined, scalars as the first command has them."""
    needs: dict[str, Any] = {}
    for one in facts:
        for name, value in one.needs.items():
            if isinstance(value, list):
                needs.setdefault(name, []).extend(value)
            else:
                needs.setdefault(name, value)
    return needs


def _writes(projection: InlineProjection) -> Callable[[list[RecordedEvent]], list[Statement]] | None:
    return getattr(projection, "writes", None)


def _answer(pending: _Pending, outcome: Any, *, ok: bool) -> None:
    if pending.future.done():  # its caller left
        return
    if ok:
        pending.future.set_result(outcome)
    else:
        pending.future.set_exception(outcome)
