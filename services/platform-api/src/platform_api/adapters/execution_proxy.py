"""execution-proxy's ``POST /internal/executions``, as a run worker calls it for one node attempt.

The wire and its failures are ``lf_service.execution_proxy``'s (lightning-jobs calls it too); this
adapter says what a node attempt asks for. ``referenceId`` is the node attempt's
(``<runId>:<nodeId>:<attempt>``): a retried delivery of the same attempt is answered from the
proxy's record of it, never executed or charged twice.

Failures: execution-proxy unreachable (no connection) or answering 503 is an outage, not the
node's: ``ExecutionProxyUnavailable``, on which the worker keeps the job and tries the same attempt
again later (an outage delays a run, it never fails it). A timeout, 429 or any other 5xx is
transient (the node is retried as a new attempt, a few times); any other 4xx is the request's own
fault (the node fails with the proxy's error code).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from lf_service.execution_proxy import (
    CancelAnswer,
    ExecutionAnswer,
    ExecutionFailed,
    ExecutionProxyClient,
    ExecutionProxyUnavailable,
    provider_for,
)
from platform_api.domain.run import Charge, Execution, NodeWork

CANCEL_TIMEOUT_SECONDS = 10.0
"""A cancel's answer: longer than the proxy's wait for the record (``CANCEL_WAIT_SECONDS``, 5)."""

NodeExecutionFailed = ExecutionFailed
"""A node attempt's execution failed (``transient``: worth another attempt)."""

__all__ = ["ExecutionProxy", "ExecutionProxyUnavailable", "NodeExecutionFailed", "provider_for"]


class ExecutionProxy:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        default_provider: str = "local",
        sponsor_id: UUID | None = None,
    ) -> None:
        self.client = ExecutionProxyClient(base_url, api_key)
        self.default_provider = default_provider
        self.sponsor_id = sponsor_id

    def body(self, work: NodeWork) -> dict[str, Any]:
        """What the proxy is asked for one node attempt. ``user_byok_local`` runs on the lenser's
        own model: the proxy charges nothing for it (its ``service`` funding)."""
        funding = {"user_byok_local": "service"}.get(work.funding_source, work.funding_source)
        body: dict[str, Any] = {
            "funding": funding,
            "provider": provider_for(work.model, work.provider_override, self.default_provider),
            "model": work.model,
            "messages": [{"role": "user", "content": work.prompt}],
            "referenceId": work.reference_id,
        }
        if funding in ("platform_credit", "user_byok_cloud"):
            body["lenserId"] = str(work.lenser_id)
        if funding == "user_byok_cloud":
            body["keyRefId"] = work.byok_key_ref_id
        if funding == "sponsored":
            if self.sponsor_id is None:
                raise NodeExecutionFailed(
                    "sponsor_not_configured", "no sponsor pays for runs here", transient=False
                )
            body["sponsorId"] = str(self.sponsor_id)
        return body

    async def execute(self, work: NodeWork, *, timeout: float) -> Execution:
        return _execution(await self.client.execute(self.body(work), timeout=timeout))

    async def execute_stream(
        self, work: NodeWork, *, timeout: float, on_text: Callable[[str], None]
    ) -> Execution:
        """The attempt streamed (``stream: true``): ``on_text`` gets each text as it arrives. With
        its ``referenceId`` the execution is detached from this connection in execution-proxy: a
        worker that dies leaves it running, and the next delivery attaches to it or gets its
        replay (from its first text), never a second charge."""
        async for item in self.client.stream(self.body(work), timeout=timeout):
            if isinstance(item, str):
                on_text(item)
            else:
                return _execution(item)
        raise NodeExecutionFailed("execution_unavailable", "the stream gave no answer", transient=True)

    async def cancel(self, work: NodeWork) -> CancelAnswer:
        """Stops the attempt's execution in execution-proxy (idempotent): it is charged for what it
        used; ``state`` says whether it was running, had ended, or had not started."""
        body = self.body(work)
        return await self.client.cancel(
            body["funding"],
            reference_id=work.reference_id,
            lenser_id=body.get("lenserId"),
            sponsor_id=body.get("sponsorId"),
            timeout=CANCEL_TIMEOUT_SECONDS,
        )

    async def close(self) -> None:
        await self.client.close()


def charge_of(answer: CancelAnswer) -> Charge | None:
    """What a cancelled attempt was charged; ``None``: not known yet (``cancelling``)."""
    if answer.state == "pending":
        return Charge(0)  # nothing had started: nothing reserved, nothing charged
    if answer.execution is None:
        return None
    return Charge(answer.execution.credits, answer.execution.input_tokens, answer.execution.output_tokens)


def _execution(answer: ExecutionAnswer) -> Execution:
    return Execution(
        output=answer.content,
        credits=answer.credits,
        input_tokens=answer.input_tokens,
        output_tokens=answer.output_tokens,
        model=answer.model,
        provider=answer.provider,
        execution_id=answer.execution_id,
        latency_ms=answer.latency_ms,
        cancelled=answer.cancelled,
        cut_short=answer.cut_short,
    )
