"""The BYOK key aggregate: what is recorded (never the secret), who owns it, revoking."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from execution_proxy.domain import errors
from execution_proxy.domain.byok_key import ByokKey
from execution_proxy.domain.events import KeyRevoked, KeyStored

AT = datetime(2026, 1, 1, tzinfo=UTC)
SECRET = "sk-ant-api03-secret-value-WXYZ"


def stored(lenser=None, **changes) -> ByokKey:
    key = ByokKey()
    values = {
        "lenser_id": lenser or uuid4(),
        "provider": "anthropic",
        "secret": SECRET,
        "label": "work",
        "at": AT,
    }
    key.store(uuid4(), **(values | changes))
    return key


def test_storing_records_the_suffix_and_never_the_secret() -> None:
    key = stored()

    [event] = key.pending()

    assert isinstance(event, KeyStored)
    assert event.suffix == "WXYZ" and event.provider == "anthropic" and event.label == "work"
    assert SECRET not in event.model_dump_json()
    assert key.active


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"provider": "local"}, "provider"),
        ({"provider": "ollama"}, "provider"),
        ({"secret": "short"}, "key"),
        ({"secret": " sk-with-spaces "}, "key"),
        ({"label": "x" * 101}, "label"),
    ],
)
def test_a_key_that_cannot_be_stored_names_the_field(changes: dict, field: str) -> None:
    with pytest.raises(errors.InvalidKey) as refused:
        stored(**changes)

    assert [problem["field"] for problem in refused.value.details["fields"]] == [field]


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini", "fal"])
def test_keys_are_taken_for_the_providers_that_take_keys(provider: str) -> None:
    assert stored(provider=provider).active


def test_the_owner_revokes_once_and_again_changes_nothing() -> None:
    owner = uuid4()
    key = stored(owner)

    assert key.revoke(owner, at=AT) is True
    assert key.revoke(owner, at=AT) is False

    assert [type(event) for event in key.pending()] == [KeyStored, KeyRevoked]
    assert not key.active


def test_to_anyone_else_a_key_does_not_exist() -> None:
    key = stored()

    with pytest.raises(errors.KeyResolutionFailed):
        key.revoke(uuid4(), at=AT)
    with pytest.raises(errors.KeyResolutionFailed):
        ByokKey().revoke(uuid4(), at=AT)
