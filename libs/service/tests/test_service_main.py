"""``service_main``: one command line for every service, each projection rebuilt as what it is."""

from __future__ import annotations

import argparse
from typing import Any, ClassVar, Self

import pytest
from aiohttp import web

import lf_service.main
from lf_projections import Projection
from lf_projections.verify import Verifiable
from lf_service import Command, Service, service_main
from lf_web import ServiceSettings

INLINE = Projection(name="balances", tables=("balances",))
FOLLOWED = Projection(name="ledger", tables=("ledger",), followed=True)


class Settings(ServiceSettings):
    loaded: ClassVar[list[bool]] = []

    @classmethod
    def load(cls, *, serving: bool = True) -> Self:
        cls.loaded.append(serving)
        return cls(env_mode="development")


def _app(settings: Any) -> web.Application:
    raise AssertionError("no command here serves")


async def _greet(settings: Settings, args: argparse.Namespace) -> int:
    print(f"hello {args.who}")
    return 3


GREET = Command(
    "greet",
    "say hello",
    configure=lambda parser: parser.add_argument("who"),
    run=_greet,
    check=lambda args: "nobody to greet" if args.who == "nobody" else None,
)
SERVICE = Service(
    name="test-svc",
    package="test_svc",
    schema="test_svc",
    migrations=[],
    settings=Settings,
    create_app=_app,
    projections=(INLINE, FOLLOWED),
    verifiable=Verifiable(aggregates=(), projections=(INLINE, FOLLOWED)),
    commands=(GREET,),
)


@pytest.fixture(autouse=True)
def _fresh() -> None:
    Settings.loaded.clear()


def test_a_projection_is_followed_only_when_it_says_so() -> None:
    assert (INLINE.follower_name, FOLLOWED.follower_name) == (None, "ledger")


def test_rebuild_hands_a_followed_projection_its_runners_checkpoint(monkeypatch, capsys) -> None:
    rebuilt: list[tuple[str, str | None]] = []

    class Conn:
        async def close(self) -> None:
            pass

    async def connect_owner(self: Any) -> Conn:
        return Conn()

    async def rebuild(conn: Conn, schema: str, projection: Projection, *, follower_name: str | None) -> int:
        rebuilt.append((projection.name, follower_name))
        return 7

    monkeypatch.setattr(lf_service.main.DatabaseAccess, "connect_owner", connect_owner)
    monkeypatch.setattr(lf_service.main, "rebuild", rebuild)

    assert service_main(SERVICE, ["projections", "rebuild"]) == 0
    assert rebuilt == [("balances", None), ("ledger", "ledger")]
    assert capsys.readouterr().out.splitlines() == ["balances: rebuilt, 7 rows", "ledger: rebuilt, 7 rows"]
    assert Settings.loaded == [False]  # an operator command needs no secrets


def test_an_unknown_projection_is_a_usage_error_before_any_settings_load(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        service_main(SERVICE, ["projections", "rebuild", "nope"])

    assert exited.value.code == 2
    assert "unknown projection(s): nope" in capsys.readouterr().err
    assert Settings.loaded == []


def test_a_service_adds_its_own_command(capsys) -> None:
    assert service_main(SERVICE, ["greet", "ada"]) == 3
    assert capsys.readouterr().out == "hello ada\n"
    assert Settings.loaded == [False]

    with pytest.raises(SystemExit) as exited:
        service_main(SERVICE, ["greet", "nobody"])
    assert exited.value.code == 2
    assert "nobody to greet" in capsys.readouterr().err
