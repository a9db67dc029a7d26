"""Seed 002's Gemini conversations and messages, the answer streamed as server-sent events, through
execution-proxy's gemini provider (the fake speaks the real one's stream)."""

from __future__ import annotations

import json

import pytest


def frames(text: str) -> list[dict]:
    return [json.loads(line[len("data: ") :]) for line in text.split("\n") if line.startswith("data: ")]


async def create(api, title: str = "Sats") -> dict:
    response = await api.post("/api/gemini/conversations", json={"title": title})
    assert response.status == 201, await response.text()
    return await response.json()


async def send(api, conversation_id, content: str = "hello there", **extra):
    return await api.post(
        f"/api/gemini/conversations/{conversation_id}/messages", json={"content": content, **extra}
    )


async def test_a_conversation_is_created_listed_and_read_with_no_messages(api):
    created = await create(api, "Sats")
    assert set(created) == {"id", "title", "createdAt"}
    assert isinstance(created["id"], int) and created["title"] == "Sats"
    listed = await (await api.get("/api/gemini/conversations")).json()
    assert listed == [created]
    read = await api.get(f"/api/gemini/conversations/{created['id']}")
    assert read.status == 200
    assert await read.json() == {**created, "messages": []}


async def test_a_sent_message_is_answered_as_sse_and_both_messages_are_kept(api, proxy):
    conversation = await create(api)
    response = await send(api, conversation["id"], "hello there")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    sent = frames(await response.text())
    assert sent[-1] == {"done": True}
    assert "".join(frame["content"] for frame in sent[:-1]) == "echo: hello there"
    assert len(sent) > 2  # streamed in pieces, not in one
    (call,) = proxy.calls
    assert call["provider"] == "gemini" and call["funding"] == "service" and call["stream"] is True
    assert call["model"] == "gemini-3-flash-preview"

    messages = await (await api.get(f"/api/gemini/conversations/{conversation['id']}/messages")).json()
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "hello there"),
        ("assistant", "echo: hello there"),
    ]
    assert all(m["conversationId"] == conversation["id"] for m in messages)
    read = await (await api.get(f"/api/gemini/conversations/{conversation['id']}")).json()
    assert read["messages"] == messages


async def test_the_history_goes_with_the_next_message_and_a_model_may_be_named(api, proxy):
    conversation = await create(api)
    await (await send(api, conversation["id"], "first")).text()
    await (await send(api, conversation["id"], "second", model="gemini-2.5-pro")).text()
    last = proxy.calls[-1]
    assert last["model"] == "gemini-2.5-pro"
    assert last["messages"] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "echo: first"},
        {"role": "user", "content": "second"},
    ]


@pytest.mark.parametrize("fails_after", [0, 1])
async def test_gemini_failing_ends_the_stream_with_an_error_and_keeps_no_answer(api, proxy, fails_after):
    conversation = await create(api)
    proxy.stream_fails_after = fails_after
    response = await send(api, conversation["id"], "hello there")
    sent = frames(await response.text())
    assert "error" in sent[-1]
    assert {"done": True} not in sent
    messages = await (await api.get(f"/api/gemini/conversations/{conversation['id']}/messages")).json()
    assert [m["role"] for m in messages] == ["user"]


async def test_execution_proxy_refusing_is_an_error_frame_with_its_code(api, proxy):
    """Read by the shared client (``lf_service.execution_proxy``): the envelope's code, not a status."""
    conversation = await create(api)
    proxy.fail_next = [502]
    sent = frames(await (await send(api, conversation["id"])).text())
    assert sent == [{"error": "Gemini failed: execute.provider_error: fake failure"}]


async def test_a_deleted_conversation_is_gone_with_its_messages(api, db):
    conversation = await create(api)
    await (await send(api, conversation["id"])).text()
    deleted = await api.delete(f"/api/gemini/conversations/{conversation['id']}")
    assert deleted.status == 204
    assert await (await api.get("/api/gemini/conversations")).json() == []
    assert (await api.get(f"/api/gemini/conversations/{conversation['id']}")).status == 404
    assert await db.fetchval("SELECT count(*) FROM gemini_messages") == 0
    again = await api.delete(f"/api/gemini/conversations/{conversation['id']}")
    assert again.status == 404


@pytest.mark.parametrize("conversation_id", ["999999", "not-a-number", "0"])
async def test_an_unknown_conversation_is_404_on_every_route(api, proxy, conversation_id):
    base = f"/api/gemini/conversations/{conversation_id}"
    for response in (
        await api.get(base),
        await api.delete(base),
        await api.get(f"{base}/messages"),
        await send(api, conversation_id),
    ):
        assert response.status == 404
        assert await response.json() == {"error": "Conversation not found"}
    assert proxy.calls == []


async def test_bodies_that_break_the_seeds_schemas_are_400(api, proxy):
    assert (await api.post("/api/gemini/conversations", json={})).status == 400
    assert (await api.post("/api/gemini/conversations", json={"title": ""})).status == 400
    conversation = await create(api)
    missing = await api.post(f"/api/gemini/conversations/{conversation['id']}/messages", json={})
    assert missing.status == 400
    assert "error" in await missing.json()
    assert proxy.calls == []
