"""Seed 002's Gemini conversations, in this service's own tables (migration 0003). Each statement
is its own transaction: nothing here waits on anything while a transaction is open."""

from __future__ import annotations

from typing import Any

import asyncpg

Row = dict[str, Any]


class Conversations:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, title: str) -> Row:
        row = await self._pool.fetchrow(
            "INSERT INTO gemini_conversations (title) VALUES ($1) RETURNING id, title, created_at", title
        )
        return dict(row)

    async def all(self) -> list[Row]:
        rows = await self._pool.fetch(
            "SELECT id, title, created_at FROM gemini_conversations ORDER BY id DESC"
        )
        return [dict(row) for row in rows]

    async def get(self, conversation_id: int) -> Row | None:
        row = await self._pool.fetchrow(
            "SELECT id, title, created_at FROM gemini_conversations WHERE id = $1", conversation_id
        )
        return dict(row) if row else None

    async def delete(self, conversation_id: int) -> bool:
        deleted = await self._pool.fetchval(
            "DELETE FROM gemini_conversations WHERE id = $1 RETURNING id", conversation_id
        )
        return deleted is not None

    async def messages(self, conversation_id: int) -> list[Row]:
        rows = await self._pool.fetch(
            "SELECT id, conversation_id, role, content, created_at FROM gemini_messages"
            " WHERE conversation_id = $1 ORDER BY id",
            conversation_id,
        )
        return [dict(row) for row in rows]

    async def add_message(self, conversation_id: int, role: str, content: str) -> Row | None:
        """None when the conversation is gone (deleted meanwhile)."""
        row = await self._pool.fetchrow(
            "INSERT INTO gemini_messages (conversation_id, role, content)"
            " SELECT id, $2, $3 FROM gemini_conversations WHERE id = $1"
            " RETURNING id, conversation_id, role, content, created_at",
            conversation_id,
            role,
            content,
        )
        return dict(row) if row else None
