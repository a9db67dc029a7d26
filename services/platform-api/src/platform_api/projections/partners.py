"""The partner provisioning records, as statements composed into each command's write (``writes``).

A pure fold: each (lenser, partner) in a batch becomes one row change, folded from its events in
order, so that no two statements touch the same row (lf_projections.projection). What a batch does
not know (e.g. the account of an earlier batch) is kept from the stored row.
"""

from __future__ import annotations

import json
from typing import Any

from lf_eventstore import RecordedEvent
from lf_pg import Statement
from lf_projections import Projection

TYPES = ("PartnerProvisionRequested", "PartnerProvisioned", "PartnerTokensRefreshed", "PartnerClaimSent")


def _changes(events: list[RecordedEvent]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for event in events:
        data, at = event.data, event.recorded_at
        row = rows.setdefault(
            (data["lenser_id"], data["partner"]),
            {
                "lenser_id": data["lenser_id"],
                "partner": data["partner"],
                "request": None,
                "account_id": None,
                "tokens": None,
                "provisioned_at": None,
                "tokens_at": None,
                "claims": 0,
                "claim_at": None,
                "at": at,
            },
        )
        match event.type:
            case "PartnerProvisionRequested":
                row["request"], row["at"] = data["request"], at
            case "PartnerProvisioned":
                row["account_id"], row["tokens"], row["provisioned_at"], row["tokens_at"] = (
                    data["account_id"],
                    data["tokens"],
                    at,
                    at,
                )
            case "PartnerTokensRefreshed":
                row["tokens"], row["tokens_at"] = data["tokens"], at
            case "PartnerClaimSent":
                row["claims"], row["claim_at"] = row["claims"] + 1, at
    return list(rows.values())


def partner_writes(events: list[RecordedEvent]) -> list[Statement]:
    rows = _changes([e for e in events if e.type in TYPES])
    if not rows:
        return []
    # A row first appears with its request; later batches change only what they carry. The proposed
    # row must satisfy NOT NULL even when it conflicts, so a batch without a request proposes an
    # empty email (never a valid one: the route demands an address) and keeps the stored details.
    return [
        Statement(
            "INSERT INTO partner_provisions AS p (lenser_id, partner, email, display_name,"
            " starter_credits, account_id, tokens, requested_at, provisioned_at, tokens_refreshed_at,"
            " claims_sent, last_claim_at)"
            " SELECT l, n, coalesce(r ->> 'email', ''), coalesce(r ->> 'display_name', ''),"
            " coalesce((r ->> 'starter_credits')::bigint, 0), a, t::jsonb, ra, pa, ta, c, ca"
            " FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::text[], $5::text[],"
            " $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::int[], $10::timestamptz[])"
            " AS x(l, n, r, a, t, ra, pa, ta, c, ca)"
            " ON CONFLICT (lenser_id, partner) DO UPDATE SET"
            " email = CASE WHEN EXCLUDED.email = '' THEN p.email ELSE EXCLUDED.email END,"
            " display_name = CASE WHEN EXCLUDED.email = '' THEN p.display_name"
            " ELSE EXCLUDED.display_name END,"
            " starter_credits = CASE WHEN EXCLUDED.email = '' THEN p.starter_credits"
            " ELSE EXCLUDED.starter_credits END,"
            " requested_at = CASE WHEN EXCLUDED.email = '' THEN p.requested_at"
            " ELSE EXCLUDED.requested_at END,"
            " account_id = coalesce(EXCLUDED.account_id, p.account_id),"
            " tokens = coalesce(EXCLUDED.tokens, p.tokens),"
            " provisioned_at = coalesce(EXCLUDED.provisioned_at, p.provisioned_at),"
            " tokens_refreshed_at = coalesce(EXCLUDED.tokens_refreshed_at, p.tokens_refreshed_at),"
            " claims_sent = p.claims_sent + EXCLUDED.claims_sent,"
            " last_claim_at = coalesce(EXCLUDED.last_claim_at, p.last_claim_at)",
            (
                [r["lenser_id"] for r in rows],
                [r["partner"] for r in rows],
                [r["request"] for r in rows],
                [r["account_id"] for r in rows],
                [json.dumps(r["tokens"]) if r["tokens"] else None for r in rows],
                [r["at"] for r in rows],
                [r["provisioned_at"] for r in rows],
                [r["tokens_at"] for r in rows],
                [r["claims"] for r in rows],
                [r["claim_at"] for r in rows],
            ),
        )
    ]


PARTNER_PROVISIONS = Projection(
    name="partner_provisions", tables=("partner_provisions",), writes=partner_writes, write_types=TYPES
)
