"""The AI of the job flow, through execution-proxy's ``/internal/executions`` with ``service``
funding (the user paid in sats; no credit moves): the evaluation on ``EVAL_MODEL``, the work on
``WORK_MODEL`` (or the one a job's work invoice was priced on), both on the ``local`` provider unless
their names say another."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lf_service.execution_proxy import ExecutionProxyClient, provider_for
from lightning_jobs.application.ports import Evaluation, WorkDone, WorkModel
from lightning_jobs.domain.verdict import evaluation_prompt, verdict_of


class ExecutionProxyAgent:
    def __init__(
        self,
        client: ExecutionProxyClient,
        *,
        eval_model: str,
        work_model: str,
        default_provider: str,
        timeout_seconds: float,
    ) -> None:
        self.client = client
        self.eval_model, self.work_model_name = eval_model, work_model
        self.default_provider = default_provider
        self.timeout_seconds = timeout_seconds

    def _provider(self, model: str) -> str:
        return provider_for(model, None, self.default_provider)

    def work_model(self) -> WorkModel:
        return WorkModel(self.work_model_name, self._provider(self.work_model_name))

    def _body(
        self, model: str, prompt: str, reference_id: str, provider: str | None = None
    ) -> dict[str, Any]:
        return {
            "funding": "service",
            "provider": provider or self._provider(model),
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "referenceId": reference_id,
        }

    async def evaluate(self, job_id: UUID, request: str, reference_id: str) -> Evaluation:
        answer = await self.client.execute(
            self._body(self.eval_model, evaluation_prompt(request), reference_id),
            timeout=self.timeout_seconds,
        )
        verdict = verdict_of(answer.content)
        return Evaluation(verdict.accepted, verdict.reason)

    async def work(self, job_id: UUID, request: str, reference_id: str, model: WorkModel) -> WorkDone:
        answer = await self.client.execute(
            self._body(model.model, request, reference_id, model.provider), timeout=self.timeout_seconds
        )
        return WorkDone(answer.content, answer.input_tokens, answer.output_tokens)

    async def close(self) -> None:
        await self.client.close()
