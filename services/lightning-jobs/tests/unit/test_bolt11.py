"""Refund invoices: BOLT #11's own examples (11-payment-encoding.md, "Examples"), and invoices minted
for the checks the examples cannot show (our network, not expired), signed like any wallet's."""

from __future__ import annotations

import pytest

from lf_testing.fakes.lnbits import make_invoice
from lightning_jobs.adapters.bolt11 import (
    Bolt11RefundChecker,
    InvalidInvoice,
    Refusal,
    check_refund_invoice,
    decode,
)

# BOLT #11: "Please send $30 for coffee beans to the same peer, which supports features 9, 15 and
# 99, using secret 0x11...11": 25 mBTC on mainnet, created at 1496314658, default expiry (3600 s).
COFFEE = (
    "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3zyg3"
    "zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqpqsq67gye39hfg3zd8rgc80k32tvy9xk2xunwm5l"
    "zexnvpx6fd77en8qaq424dxgt56cag2dpt359k3ssyhetktkpqh24jqnjyw6uqd08sgptq44qu"
)
# "Same, but including fields which must be ignored."
COFFEE_WITH_IGNORED_FIELDS = (
    "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3"
    "zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqpqsq2qrqqqfppnqqqqqqqqqqqqqqqqqqq"
    "qqqqqqqqqqqqqppnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqpp4qqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
    "qqqqqqqqqqqqqqqqqqqqqqqhpnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqhp4qqqqqqqqqqqqqqqqqqqq"
    "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqspnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqsp4qqqqqqqqqq"
    "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnp5qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnp"
    "kqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq2jxxfsnucm4jf4zwtznpaxphce606fvhvje5x7d4gw7n7"
    "3994hgs7nteqvenq8a4ml8aqtchv5d9pf7l558889hp4yyrqv6a7zpq9fgpskqhza"
)
COFFEE_HASH = "0001020304050607080900010203040506070809000102030405060708090102"
COFFEE_CREATED = 1496314658
COFFEE_SATS = 2_500_000  # 25 milli-bitcoin
EXAMPLE_NODE = "03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad"
# "Please send 0.0025 BTC for a cup of nonsense (ナンセンス 1杯) to the same peer, within one minute":
# the spec's first-era example, with no payment secret (see the test that refuses it).
NONSENSE = (
    "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4eyqc7d8d0"
    "xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvyakky2zr4cusd45tftc9c5fh0nnqpnl2jfll544"
    "esqchsrny"
)
# The spec's "Examples of Invalid Invoices" (each the nonsense one broken in one way).
INVALID = {
    "bech32 checksum is invalid": NONSENSE[:-1] + "t",
    "no separator": NONSENSE[len("lnbc2500u1") :],
    "mixed case": "LNBC2500u1" + NONSENSE[len("lnbc2500u1") :],
    "invalid multiplier": (
        "lnbc2500x1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpujr6jxr"
        "9gq9pv6g46y7d20jfkegkg4gljz2ea2a3m9lmvvr95tq2s0kvu70u3axgelz3kyvtp2ywwt0y8hkx2869zq5dll9nelr83zzqqpgl2zg"
    ),
    "sub-millisatoshi precision": (
        "lnbc2500000001p1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpu"
        "7hqtk93pkf7sw55rdv4k9z2vj050rxdr6za9ekfs3nlt5lr89jqpdmxsmlj9urqumg0h9wzpqecw7th56tdms40p2ny9q4ddvjsedzcplv"
        "a53s"
    ),
    "string is too short": (
        "lnbc1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6na6hlh"
    ),
    "signature is not recoverable": (
        "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpuaxtrnwng"
        "zn3kdzw5hydlzf03qdgm2hdq27cqv3agm2awhz5se903vruatfhq77w3ls4evs3ch9zw97j25emudupq63nyw24cg27h2rspk28uwq"
    ),
    "not an invoice at all": "hello",
    "empty": "",
}
WHILE_VALID = COFFEE_CREATED + 60  # the examples are from 2017: "now" is set within their hour


def test_bolt11s_coffee_example_decodes_to_what_the_spec_says() -> None:
    invoice = decode(COFFEE)
    assert invoice.network == "bc"
    assert invoice.amount_msat == COFFEE_SATS * 1000
    assert invoice.amount_sats == COFFEE_SATS
    assert invoice.payment_hash == COFFEE_HASH
    assert invoice.created_at == COFFEE_CREATED
    assert invoice.expires_at == COFFEE_CREATED + 3600  # no x field: the default hour
    assert invoice.description == "coffee beans"
    assert invoice.payee == EXAMPLE_NODE  # recovered from the signature


def test_the_upper_case_example_and_the_one_with_fields_to_ignore_decode_the_same() -> None:
    for variant in (COFFEE.upper(), COFFEE_WITH_IGNORED_FIELDS):
        invoice = decode(variant)
        assert (invoice.payment_hash, invoice.amount_sats, invoice.description) == (
            COFFEE_HASH,
            COFFEE_SATS,
            "coffee beans",
        )


def test_a_lightning_uri_and_surrounding_space_are_accepted() -> None:
    assert decode(f"  lightning:{COFFEE}\n").bolt11 == COFFEE


@pytest.mark.parametrize("bolt11", INVALID.values(), ids=INVALID.keys())
def test_the_specs_invalid_examples_are_malformed(bolt11: str) -> None:
    with pytest.raises(InvalidInvoice) as refused:
        decode(bolt11)
    assert refused.value.reason is Refusal.MALFORMED


def test_an_invoice_without_a_payment_secret_is_refused_as_no_current_node_would_pay_it() -> None:
    with pytest.raises(InvalidInvoice) as refused:
        decode(NONSENSE)
    assert refused.value.reason is Refusal.MALFORMED
    assert "payment_secret" in refused.value.message


def test_the_coffee_example_is_a_valid_mainnet_refund_of_its_amount_within_its_hour() -> None:
    invoice = check_refund_invoice(COFFEE, amount_sats=COFFEE_SATS, network="bc", now=WHILE_VALID)
    assert invoice.payment_hash == COFFEE_HASH


@pytest.mark.parametrize("amount", [COFFEE_SATS - 1, COFFEE_SATS + 1, 1])
def test_a_refund_invoice_for_another_amount_is_refused(amount: int) -> None:
    with pytest.raises(InvalidInvoice) as refused:
        check_refund_invoice(COFFEE, amount_sats=amount, network="bc", now=WHILE_VALID)
    assert refused.value.reason is Refusal.WRONG_AMOUNT


@pytest.mark.parametrize("network", ["tb", "bcrt", "tbs"])
def test_a_mainnet_invoice_is_refused_on_another_network(network: str) -> None:
    with pytest.raises(InvalidInvoice) as refused:
        check_refund_invoice(COFFEE, amount_sats=COFFEE_SATS, network=network, now=WHILE_VALID)
    assert refused.value.reason is Refusal.WRONG_NETWORK


@pytest.mark.parametrize("network", ["bc", "tb", "bcrt"])
def test_an_invoice_made_for_a_network_is_accepted_there_only(network: str) -> None:
    made = make_invoice(21, network=network)
    now = decode(made.bolt11).created_at
    accepted = check_refund_invoice(made.bolt11, amount_sats=21, network=network, now=now)
    assert accepted.payment_hash == made.payment_hash
    assert made.bolt11.startswith(f"ln{network}210n1")  # 21 sats = 210 nano-bitcoin
    for other in {"bc", "tb", "bcrt"} - {network}:
        with pytest.raises(InvalidInvoice) as refused:
            check_refund_invoice(made.bolt11, amount_sats=21, network=other, now=now)
        assert refused.value.reason is Refusal.WRONG_NETWORK


def test_an_expired_invoice_is_refused() -> None:
    with pytest.raises(InvalidInvoice) as refused:
        check_refund_invoice(COFFEE, amount_sats=COFFEE_SATS, network="bc", now=COFFEE_CREATED + 3600)
    assert refused.value.reason is Refusal.EXPIRED


def test_an_invoice_about_to_expire_is_refused_and_one_with_time_left_is_not() -> None:
    expires = COFFEE_CREATED + 3600
    with pytest.raises(InvalidInvoice) as refused:
        check_refund_invoice(COFFEE, amount_sats=COFFEE_SATS, network="bc", now=expires - 9)
    assert refused.value.reason is Refusal.EXPIRED
    check_refund_invoice(COFFEE, amount_sats=COFFEE_SATS, network="bc", now=expires - 10)


def test_a_freshly_made_invoice_expires_after_its_own_expiry() -> None:
    made = make_invoice(8, network="bcrt", expiry_seconds=600, created_at=1_800_000_000)
    check_refund_invoice(made.bolt11, amount_sats=8, network="bcrt", now=1_800_000_000 + 589)
    with pytest.raises(InvalidInvoice) as refused:
        check_refund_invoice(made.bolt11, amount_sats=8, network="bcrt", now=1_800_000_000 + 600)
    assert refused.value.reason is Refusal.EXPIRED


def test_an_invoice_without_an_amount_is_refused() -> None:
    made = make_invoice(None, network="bcrt")
    assert decode(made.bolt11).amount_msat is None
    with pytest.raises(InvalidInvoice) as refused:
        check_refund_invoice(made.bolt11, amount_sats=8, network="bcrt", now=decode(made.bolt11).created_at)
    assert refused.value.reason is Refusal.WRONG_AMOUNT


def test_an_invoice_for_a_fraction_of_a_sat_more_is_refused() -> None:
    made = make_invoice(None, network="bcrt", amount_msat=8_001)
    invoice = decode(made.bolt11)
    assert (invoice.amount_msat, invoice.amount_sats) == (8_001, None)
    with pytest.raises(InvalidInvoice) as refused:
        check_refund_invoice(made.bolt11, amount_sats=8, network="bcrt", now=invoice.created_at)
    assert refused.value.reason is Refusal.WRONG_AMOUNT


def test_an_unknown_network_setting_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="LIGHTNING_NETWORK"):
        check_refund_invoice(COFFEE, amount_sats=COFFEE_SATS, network="mainnet", now=WHILE_VALID)


def test_the_refund_checker_checks_network_and_expiry_at_its_clocks_time_and_leaves_the_amount() -> None:
    now = [float(WHILE_VALID)]
    checker = Bolt11RefundChecker("bc", clock=lambda: now[0])
    invoice = checker.check(COFFEE)
    assert (invoice.payment_hash, invoice.amount_sats) == (COFFEE_HASH, COFFEE_SATS)
    now[0] = COFFEE_CREATED + 3600
    with pytest.raises(InvalidInvoice) as refused:
        checker.check(COFFEE)
    assert refused.value.reason is Refusal.EXPIRED
    with pytest.raises(InvalidInvoice) as refused:
        Bolt11RefundChecker("tb", clock=lambda: float(WHILE_VALID)).check(COFFEE)
    assert refused.value.reason is Refusal.WRONG_NETWORK


def test_the_refund_checker_reads_an_invoice_without_an_amount_as_none() -> None:
    made = make_invoice(None, network="bcrt")
    assert Bolt11RefundChecker("bcrt").check(made.bolt11).amount_sats is None


def test_the_refund_checker_refuses_an_unknown_network_setting() -> None:
    with pytest.raises(ValueError, match="LIGHTNING_NETWORK"):
        Bolt11RefundChecker("regtest")
