"""Lensers' own provider keys: store, list, revoke, resolve (for ``/execute/byok`` and internal
``user_byok_cloud`` executions), and re-wrap after a master key rotation.

Storing records ``KeyStored`` (never the secret) and writes the encrypted material in the same
transaction; revoking records ``KeyRevoked`` and deletes the material in the same transaction, so a
revoked key is gone for good (crypto-shredding), not merely hidden. Revoking a key already revoked
answers it again, unchanged: a retried DELETE succeeds. A key id of another lenser, or of no key,
is ``KeyResolutionFailed`` everywhere, with the same message.

A resolved key is remembered for ``cache_seconds`` (5 by default) in the replica's memory: resolving
is a database round trip, and on ``/execute/byok`` that round trip is most of what the platform adds
to the provider's own latency. The price: a key revoked through one replica keeps working on the
others for at most those seconds (on the revoking replica it stops at once). Secrets are never
written anywhere but the encrypted material; the cache holds them as the request path would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import structlog

from execution_proxy.adapters.envelope import MasterKeys, Sealed, UnreadableKey
from execution_proxy.domain import errors
from execution_proxy.domain.byok_key import ByokKey
from execution_proxy.projections import INLINE
from lf_eventstore import AggregateRepository, CommandRunner, UseCases

REPOSITORY = AggregateRepository(ByokKey, "byok-key")
REWRAP_BATCH = 500
CACHE_SIZE = 10_000

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class KeyView:
    """A key as its owner sees it listed: never the secret, only its last 4 characters."""

    key_id: UUID
    provider: str
    label: str | None
    suffix: str
    status: str
    created_at: datetime


class ByokKeys(UseCases):
    def __init__(
        self,
        pool: asyncpg.Pool,
        master_keys: MasterKeys,
        *,
        cache_seconds: float = 5.0,
        appended: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(CommandRunner(pool, INLINE, appended=appended))
        self.pool = pool
        self.master_keys = master_keys
        self.cache_seconds = cache_seconds
        self._resolved: dict[tuple[UUID, UUID], tuple[str, str, float]] = {}

    async def store(
        self, lenser_id: UUID, provider: str, secret: str, label: str | None, *, metadata: dict[str, Any]
    ) -> KeyView:
        key_id, now = uuid4(), self.clock()
        sealed = self.master_keys.seal(secret, key_id=key_id, lenser_id=lenser_id)

        async def decide(conn: asyncpg.Connection, key: ByokKey) -> KeyView:
            key.store(key_id, lenser_id=lenser_id, provider=provider, secret=secret, label=label, at=now)
            await conn.execute(
                "INSERT INTO byok_key_material (key_id, master_key_id, wrapped_data_key, data_key_nonce,"
                " secret_nonce, ciphertext, stored_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                key_id,
                sealed.master_key_id,
                sealed.wrapped_data_key,
                sealed.data_key_nonce,
                sealed.secret_nonce,
                sealed.ciphertext,
                now,
            )
            return _view_of(key)

        view = await self.commands.run(REPOSITORY, key_id, decide, metadata=metadata)
        log.info("byok.key_stored", key_id=str(key_id), provider=provider, master_key_id=sealed.master_key_id)
        return view

    async def list(self, lenser_id: UUID) -> list[KeyView]:
        """The lenser's active keys, newest first (a revoked key is gone: it can never be used)."""
        rows = await self.pool.fetch(
            "SELECT * FROM byok_keys WHERE lenser_id = $1 AND status = 'active' ORDER BY created_at DESC",
            lenser_id,
        )
        return [_view(row) for row in rows]

    async def revoke(self, lenser_id: UUID, key_id: UUID, *, metadata: dict[str, Any]) -> KeyView:
        """The key, revoked and its material deleted; revoked already: answered as it is."""

        async def decide(conn: asyncpg.Connection, key: ByokKey) -> KeyView:
            key.revoke(lenser_id, at=self.clock())  # another lenser's: KeyResolutionFailed
            # Always, not only when just revoked: whatever state the table is in, nothing is left.
            await conn.execute("DELETE FROM byok_key_material WHERE key_id = $1", key_id)
            return _view_of(key)

        revoked = await self.commands.run(REPOSITORY, key_id, decide, new=_missing, metadata=metadata)
        self._resolved.pop((lenser_id, key_id), None)  # after the commit: nothing can bring it back
        return revoked

    async def resolve(self, lenser_id: UUID, key_id: UUID) -> tuple[str, str]:
        """(provider, secret) of ``lenser_id``'s active key ``key_id`` (the ``KeyResolver`` of
        executions). Missing, revoked, someone else's or unreadable: ``KeyResolutionFailed``."""
        remembered = self._resolved.get((lenser_id, key_id))
        if remembered is not None and time.monotonic() < remembered[2]:
            return remembered[0], remembered[1]
        provider, secret = await self._resolve(lenser_id, key_id)
        if len(self._resolved) > CACHE_SIZE:
            self._resolved.clear()  # a bound, not a policy: the next requests fill it again
        self._resolved[(lenser_id, key_id)] = (provider, secret, time.monotonic() + self.cache_seconds)
        return provider, secret

    async def _resolve(self, lenser_id: UUID, key_id: UUID) -> tuple[str, str]:
        row = await self.pool.fetchrow(
            "SELECT k.provider, m.master_key_id, m.wrapped_data_key, m.data_key_nonce, m.secret_nonce,"
            " m.ciphertext FROM byok_keys k JOIN byok_key_material m USING (key_id)"
            " WHERE k.key_id = $1 AND k.lenser_id = $2 AND k.status = 'active'",
            key_id,
            lenser_id,
        )
        if row is None:
            raise errors.KeyResolutionFailed()
        try:
            secret = self.master_keys.open(_sealed(row), key_id=key_id, lenser_id=lenser_id)
        except UnreadableKey as unreadable:
            # The operator's problem (a master key missing from the settings, or altered rows);
            # the lenser is told what a missing key gets and can store the key again.
            log.error(
                "byok.key_unreadable",
                key_id=str(key_id),
                master_key_id=row["master_key_id"],
                reason=str(unreadable),
            )
            raise errors.KeyResolutionFailed() from None
        return row["provider"], secret

    async def rewrap(self) -> int:
        """Wrap every data key not under the current master key with it; returns how many were.
        Secrets are not re-encrypted. A key whose master is not configured is logged and left as
        it is (``under_other_masters`` then counts it)."""
        current, after, rewrapped = self.master_keys.current.key_id, UUID(int=0), 0
        while rows := await self.pool.fetch(
            "SELECT * FROM byok_key_material WHERE master_key_id <> $1 AND key_id > $2"
            " ORDER BY key_id LIMIT $3",
            current,
            after,
            REWRAP_BATCH,
        ):
            after = rows[-1]["key_id"]
            for row in rows:
                try:
                    sealed = self.master_keys.rewrap(_sealed(row))
                except UnreadableKey as unreadable:
                    log.error(
                        "byok.key_not_rewrapped",
                        key_id=str(row["key_id"]),
                        master_key_id=row["master_key_id"],
                        reason=str(unreadable),
                    )
                    continue
                assert sealed is not None
                # Guarded by the master it was read under: a concurrent rewrap or revoke wins.
                status = await self.pool.execute(
                    "UPDATE byok_key_material SET master_key_id = $3, wrapped_data_key = $4,"
                    " data_key_nonce = $5 WHERE key_id = $1 AND master_key_id = $2",
                    row["key_id"],
                    row["master_key_id"],
                    sealed.master_key_id,
                    sealed.wrapped_data_key,
                    sealed.data_key_nonce,
                )
                rewrapped += status == "UPDATE 1"
        return rewrapped

    async def under_other_masters(self) -> int:
        """How many stored keys are not under the current master key (0 once rotation is done)."""
        current = self.master_keys.current.key_id
        return await self.pool.fetchval(
            "SELECT count(*) FROM byok_key_material WHERE master_key_id <> $1", current
        )


def _missing() -> ByokKey:
    raise errors.KeyResolutionFailed()


def _view_of(key: ByokKey) -> KeyView:
    stored = key.stored
    assert stored is not None
    return KeyView(
        key_id=stored.key_id,
        provider=stored.provider,
        label=stored.label,
        suffix=stored.suffix,
        status="active" if key.active else "revoked",
        created_at=stored.at,
    )


def _view(row: asyncpg.Record) -> KeyView:
    return KeyView(
        key_id=row["key_id"],
        provider=row["provider"],
        label=row["label"],
        suffix=row["suffix"],
        status=row["status"],
        created_at=row["created_at"],
    )


def _sealed(row: asyncpg.Record) -> Sealed:
    return Sealed(
        master_key_id=row["master_key_id"],
        wrapped_data_key=row["wrapped_data_key"],
        data_key_nonce=row["data_key_nonce"],
        secret_nonce=row["secret_nonce"],
        ciphertext=row["ciphertext"],
    )
