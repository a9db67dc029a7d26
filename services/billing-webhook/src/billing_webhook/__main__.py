"""``python -m billing_webhook serve | migrate | projections rebuild [NAME] | verify`` (``lf_service``),
and billing's own ``deliveries ...``.

``deliveries list [--limit N] [--failed]``, ``deliveries show ID``, ``deliveries replay ID``: inspect
the stored deliveries and ask for one to be processed again (by the running service); an ID may be
abbreviated to any unique prefix. ``deliveries send FILE``: sign a payload file's raw bytes as
LemonSqueezy does and post it, for trying the webhook by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable
from pathlib import Path

import aiohttp
import asyncpg

from billing_webhook.adapters.lemonsqueezy import signatures
from billing_webhook.app import MIGRATIONS, SCHEMA, SERVICE, create_app
from billing_webhook.application import queries
from billing_webhook.application.billing import Billing
from billing_webhook.projections import ALL
from billing_webhook.settings import BillingSettings
from billing_webhook.verification import VERIFIABLE
from lf_service import Command, Service, service_main, service_pool

DEFAULT_WEBHOOK_URL = "http://127.0.0.1:8786/webhook/lemonsqueezy"
SESSION_PLACEHOLDER = "REPLACE-WITH-SESSION-ID"


async def _seed(settings: BillingSettings) -> None:
    if not settings.seed_credit_packs:
        return
    async with service_pool(settings, SCHEMA) as pool:
        defined = await Billing.create(pool).packs.seed()
    if defined:
        print(f"{SERVICE}: seeded credit packs {', '.join(defined)}")


async def _resolve(pool: asyncpg.Pool, prefix: str) -> str | None:
    async with pool.acquire() as conn:
        found = await queries.delivery_ids(conn, prefix)
    if len(found) != 1:
        print(f"{'no' if not found else 'more than one'} delivery with id {prefix!r}", file=sys.stderr)
        return None
    return found[0]


async def _list(settings: BillingSettings, limit: int, failed_only: bool) -> int:
    async with service_pool(settings, SCHEMA) as pool, pool.acquire() as conn:
        rows = await queries.deliveries(conn, limit=limit, failed_only=failed_only)
    print(f"{'ID':<16}  {'RECEIVED':<25}  {'EVENT':<30}  {'STATUS':<9}  {'TRIES':>5}  RESULT")
    for r in rows:
        result = f"{r['outcome']}: {r['detail']}" if r["outcome"] else (r["detail"] or "")
        print(
            f"{r['delivery_id'][:16]}  {r['received_at'].isoformat(timespec='seconds'):<25}"
            f"  {r['event_name']:<30}  {r['status']:<9}  {r['attempts']:>5}  {result}"
        )
    return 0


async def _show(settings: BillingSettings, prefix: str) -> int:
    async with service_pool(settings, SCHEMA) as pool:
        if (key := await _resolve(pool, prefix)) is None:
            return 1
        async with pool.acquire() as conn:
            found = await queries.delivery(conn, key)
    print(json.dumps(found, indent=2, default=str))
    return 0


async def _replay(settings: BillingSettings, prefix: str) -> int:
    async with service_pool(settings, SCHEMA) as pool:
        if (key := await _resolve(pool, prefix)) is None:
            return 1
        requested = await Billing.create(pool).deliveries.replay(key, metadata={"actor": "cli:replay"})
    print(f"{key}: " + ("replay requested" if requested else "already waiting to be processed"))
    return 0


async def _send(settings: BillingSettings, args: argparse.Namespace, raw: bytes) -> int:
    if args.session:
        raw = raw.replace(SESSION_PLACEHOLDER.encode(), args.session.encode())
    headers = {
        "Content-Type": "application/json",
        "X-Signature": signatures.sign(raw, args.secret or settings.lemonsqueezy_webhook_secret),
    }
    if event_name := args.event_name or _event_name(raw):
        headers["X-Event-Name"] = event_name
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(args.url, data=raw, headers=headers) as response,
        ):
            status, answer = response.status, await response.text()
    except aiohttp.ClientError as error:
        print(f"cannot post to {args.url}: {error}", file=sys.stderr)
        return 1
    print(f"{status} {answer}")
    return 0 if status == 200 else 1


def _event_name(raw: bytes) -> str | None:
    try:
        name = json.loads(raw)["meta"]["event_name"]
    except (ValueError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) else None


def _configure_deliveries(deliveries: argparse.ArgumentParser) -> None:
    action = deliveries.add_subparsers(dest="action", required=True)
    listing = action.add_parser("list", help="the newest deliveries first")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--failed", action="store_true", help="only the ones whose processing failed")
    action.add_parser("show", help="a delivery's payload and processing history").add_argument("id")
    action.add_parser("replay", help="process a stored delivery again").add_argument("id")
    send = action.add_parser("send", help="sign a payload file's raw bytes and post it")
    send.add_argument("file")
    send.add_argument("--url", default=DEFAULT_WEBHOOK_URL, help=f"default: {DEFAULT_WEBHOOK_URL}")
    send.add_argument("--secret", help="signing secret (default: LEMONSQUEEZY_WEBHOOK_SECRET or the dev one)")
    send.add_argument("--event-name", help="X-Event-Name (default: the file's meta.event_name)")
    send.add_argument("--session", help=f"replaces {SESSION_PLACEHOLDER} in the file before signing")


def _check_deliveries(args: argparse.Namespace) -> str | None:
    if args.action == "send" and not Path(args.file).is_file():
        return f"no such file: {args.file}"
    return None


def _deliveries(settings: BillingSettings, args: argparse.Namespace) -> Awaitable[int]:
    if args.action == "list":
        return _list(settings, args.limit, args.failed)
    if args.action == "show":
        return _show(settings, args.id)
    if args.action == "replay":
        return _replay(settings, args.id)
    return _send(settings, args, Path(args.file).read_bytes())  # read before the loop starts


BILLING_WEBHOOK = Service(
    name=SERVICE,
    package="billing_webhook",
    schema=SCHEMA,
    migrations=MIGRATIONS,
    settings=BillingSettings,
    create_app=create_app,
    projections=tuple(ALL.values()),
    verifiable=VERIFIABLE,
    before_serving=_seed,  # the dev catalogue, if SEED_CREDIT_PACKS and it is empty
    commands=(
        Command(
            "deliveries",
            "inspect, replay or send webhook deliveries",
            configure=_configure_deliveries,
            run=_deliveries,
            check=_check_deliveries,
            serving=True,  # `send` signs with the webhook secret: production refuses a weak one
        ),
    ),
)


def main(argv: list[str] | None = None) -> int:
    return service_main(BILLING_WEBHOOK, argv)


if __name__ == "__main__":
    sys.exit(main())
