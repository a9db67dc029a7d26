"""A lens run executed by the real execution-proxy (its built-in ``local`` provider, no key), not
a fake: the run worker's request and the proxy's answer are each other's real wire format.

Funding ``user_byok_local`` reaches the proxy as its ``service`` funding: nothing is charged."""

from __future__ import annotations

from uuid import UUID

HELLO = {
    "name": "hello",
    "template": "Say hello to {{who}}",
    "parameters": [{"name": "who", "type": "string", "required": True}],
    "modelId": "local-small",
}


async def test_a_lens_run_on_the_local_provider_succeeds_with_its_output(platform, run_to_end, lenser: UUID):
    lens = await platform.lens(lenser, **HELLO)

    run = await run_to_end(
        lens["id"], lenser, {"params": {"who": "owls"}, "fundingSource": "user_byok_local"}
    )

    assert run["status"] == "succeeded", (run["errorMessage"], run)
    assert run["providerKey"] == "local" and run["modelId"] == "local-small"
    assert run["creditCost"] == 0 and run["billingStatus"] == "byok"
    assert run["tokenOutput"] > 0
    [artifact] = run["artifacts"]
    assert artifact["isPrimaryOutput"] and artifact["contentText"]
