"""Signature checks and the payload models, without any I/O."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from billing_webhook.adapters.lemonsqueezy import payloads
from billing_webhook.adapters.lemonsqueezy.signatures import sign, verify

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BODY = b'{"meta":{"event_name":"order_created"},"data":{}}'
SECRET = "s3cret"


def test_a_body_signed_with_the_secret_verifies_in_either_hex_case():
    assert verify(BODY, sign(BODY, SECRET), SECRET)
    assert verify(BODY, sign(BODY, SECRET).upper(), SECRET)


@pytest.mark.parametrize(
    ("body", "signature", "secret"),
    [
        (BODY.replace(b"order", b"ordeR"), sign(BODY, SECRET), SECRET),  # one byte changed
        (BODY, sign(BODY, "other"), SECRET),  # another secret
        (BODY, None, SECRET),  # no header
        (BODY, sign(BODY, SECRET)[:-1], SECRET),  # wrong length
        (BODY, "g" * 64, SECRET),  # not hex
        (json.dumps(json.loads(BODY), indent=1).encode(), sign(BODY, SECRET), SECRET),  # re-serialised
        (BODY, sign(BODY, ""), ""),  # no secret configured: nothing verifies
    ],
    ids=["byte-changed", "other-secret", "missing", "wrong-length", "not-hex", "reserialised", "no-secret"],
)
def test_anything_but_the_exact_body_signed_with_the_secret_fails(body, signature, secret):
    assert not verify(body, signature, secret)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_every_example_delivery_is_a_valid_document_of_its_event(path):
    document = payloads.parse(json.loads(path.read_bytes()))
    assert document.meta.event_name == path.stem
    assert type(document) is payloads.MODELS[path.stem]


def test_ids_may_be_numbers_but_money_must_be_whole_cents():
    example = json.loads((EXAMPLES / "order_created.json").read_bytes())
    example["data"]["attributes"]["first_order_item"]["variant_id"] = 42
    assert payloads.parse(example).data.attributes.first_order_item.variant_id == "42"
    example["data"]["attributes"]["total"] = "100"
    with pytest.raises(ValidationError):
        payloads.parse(example)
