"""Reading the BOLT11 invoice a user hands us to be refunded (BOLT #11), with the ``bolt11`` package.

``check_refund_invoice`` is what ``POST /api/jobs/{id}/refund`` needs before paying anything (or
``Bolt11RefundChecker.check``, for a caller that compares the amount itself): the invoice decodes
(bech32 checksum, signature, a payment hash and a payment secret, as every current node requires),
asks for exactly ``refundAmountSats`` (an invoice without an amount is refused: the payer would
choose it), is for our network (``LIGHTNING_NETWORK``: ``bc`` mainnet, ``tb`` testnet, ``tbs``
signet, ``bcrt`` regtest) and is not expired, with a margin left for the payment to arrive.
Each refusal is an ``InvalidInvoice`` with a ``reason`` the route turns into its 400.

Two rules of BOLT #11 the package does not enforce, checked here: a mixed-case string is invalid
(it lowercases first), and a pico-bitcoin amount must end in 0 (no sub-millisatoshi precision).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import bolt11 as bolt11_package

from lightning_jobs.application.ports import RefundInvoice
from lightning_jobs.domain.errors import InvalidRefundInvoice

NETWORKS = frozenset({"bc", "tb", "tbs", "bcrt"})
# Time left on a refund invoice when we accept it: a payment sent with less may expire on the way.
DEFAULT_MIN_SECONDS_LEFT = 10
_HRP = re.compile(r"^ln(bcrt|bc|tbs|tb)(\d*)([munp]?)$")
_URI_PREFIX = "lightning:"


class Refusal(StrEnum):
    MALFORMED = "malformed"
    WRONG_AMOUNT = "wrong_amount"
    WRONG_NETWORK = "wrong_network"
    EXPIRED = "expired"


class InvalidInvoice(ValueError):
    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class DecodedInvoice:
    bolt11: str
    """As given, less surrounding space and a ``lightning:`` prefix: what is sent to be paid."""
    network: str
    amount_msat: int | None
    payment_hash: str
    """Hex; how a payment whose outcome is unknown is looked up before any retry."""
    created_at: int
    """Unix seconds."""
    expires_at: int
    description: str | None
    payee: str | None

    @property
    def amount_sats(self) -> int | None:
        if self.amount_msat is None or self.amount_msat % 1000:
            return None
        return self.amount_msat // 1000


def decode(text: str) -> DecodedInvoice:
    """A BOLT11 invoice, or ``InvalidInvoice(MALFORMED)``."""
    bolt11 = _strip(text)
    if bolt11 != bolt11.lower() and bolt11 != bolt11.upper():
        raise InvalidInvoice(Refusal.MALFORMED, "a BOLT11 invoice is all lower case or all upper case")
    _check_amount_precision(bolt11)
    try:
        invoice = bolt11_package.decode(bolt11)
        amount = invoice.amount_msat
        return DecodedInvoice(
            bolt11=bolt11,
            network=invoice.currency,
            amount_msat=int(amount) if amount else None,
            payment_hash=invoice.payment_hash,
            created_at=invoice.date,
            expires_at=invoice.expiry_time,
            description=invoice.description,
            payee=invoice.payee,
        )
    # The package raises its own errors, but also bitstring's, coincurve's (a signature that does
    # not recover) and UnicodeDecodeError: whatever it is, the string is not an invoice we can pay.
    except Exception as error:  # noqa: BLE001
        raise InvalidInvoice(Refusal.MALFORMED, f"not a valid BOLT11 invoice: {error}") from None


def check_refund_invoice(
    text: str, *, amount_sats: int, network: str, now: float, min_seconds_left: int = DEFAULT_MIN_SECONDS_LEFT
) -> DecodedInvoice:
    """The invoice, decoded, if we may pay it as a refund of exactly ``amount_sats`` on ``network``."""
    invoice = check_payable(text, network=network, now=now, min_seconds_left=min_seconds_left)
    if invoice.amount_msat is None:
        raise InvalidInvoice(
            Refusal.WRONG_AMOUNT, f"the invoice has no amount; it must be for {amount_sats} sats"
        )
    if invoice.amount_sats != amount_sats:
        raise InvalidInvoice(
            Refusal.WRONG_AMOUNT,
            f"the invoice is for {invoice.amount_msat} msat; it must be for exactly {amount_sats} sats",
        )
    return invoice


def check_payable(
    text: str, *, network: str, now: float, min_seconds_left: int = DEFAULT_MIN_SECONDS_LEFT
) -> DecodedInvoice:
    """The invoice, decoded, if it is one we could pay on ``network`` now: everything but the amount."""
    if network not in NETWORKS:
        raise ValueError(f"LIGHTNING_NETWORK must be one of {sorted(NETWORKS)}, not {network!r}")
    invoice = decode(text)
    if invoice.network != network:
        raise InvalidInvoice(
            Refusal.WRONG_NETWORK, f"the invoice is for network {invoice.network!r}; we pay on {network!r}"
        )
    if invoice.expires_at - now < min_seconds_left:
        raise InvalidInvoice(Refusal.EXPIRED, "the invoice has expired (or is about to)")
    return invoice


class Bolt11RefundChecker:
    """``check(payment_request)`` for a flow that checks the amount itself: decodes, and checks the
    network (``LIGHTNING_NETWORK``) and the expiry at the moment of the check. The result has
    ``payment_hash`` and ``amount_sats`` (None for an invoice without a whole number of sats)."""

    def __init__(
        self,
        network: str,
        *,
        clock: Callable[[], float] = time.time,
        min_seconds_left: int = DEFAULT_MIN_SECONDS_LEFT,
    ) -> None:
        if network not in NETWORKS:
            raise ValueError(f"LIGHTNING_NETWORK must be one of {sorted(NETWORKS)}, not {network!r}")
        self._network, self._clock, self._min_seconds_left = network, clock, min_seconds_left

    def check(self, payment_request: str) -> DecodedInvoice:
        return check_payable(
            payment_request, network=self._network, now=self._clock(), min_seconds_left=self._min_seconds_left
        )


class Bolt11RefundInvoices:
    """``application.ports.RefundInvoiceChecker`` with ``LIGHTNING_BACKEND=lnbits``: a real BOLT11
    invoice, decoded and checked (network, expiry, form) by ``Bolt11RefundChecker``, its refusal said
    as the job flow's ``InvalidRefundInvoice`` (400). The amount is the job's to check."""

    def __init__(self, network: str, **options: Any) -> None:
        self._checker = Bolt11RefundChecker(network, **options)

    def check(self, payment_request: str) -> RefundInvoice:
        try:
            invoice = self._checker.check(payment_request)
        except InvalidInvoice as invalid:
            raise InvalidRefundInvoice(invalid.message) from None
        if invoice.amount_sats is None:
            raise InvalidRefundInvoice("Invoice must be for a whole number of sats")
        return RefundInvoice(invoice.payment_hash, invoice.amount_sats)


def _strip(text: str) -> str:
    text = text.strip()
    if text[: len(_URI_PREFIX)].lower() == _URI_PREFIX:
        text = text[len(_URI_PREFIX) :]
    return text


def _check_amount_precision(bolt11: str) -> None:
    hrp = bolt11.lower().rpartition("1")[0]
    match = _HRP.match(hrp)
    if match is None:
        raise InvalidInvoice(Refusal.MALFORMED, "not a BOLT11 invoice (its prefix is not ln + a network)")
    digits, multiplier = match.group(2), match.group(3)
    if multiplier and not digits:
        raise InvalidInvoice(Refusal.MALFORMED, "an amount multiplier without an amount")
    if multiplier == "p" and not digits.endswith("0"):
        raise InvalidInvoice(Refusal.MALFORMED, "the amount is more precise than a millisatoshi")
