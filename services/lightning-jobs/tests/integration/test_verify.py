"""``python -m lightning_jobs verify`` as an operator runs it: the log replayed into the read models
(job status, the sats ledger) finds every row as the commands wrote it."""

from __future__ import annotations

from lf_testing.processes import operator_command
from lightning_jobs.adapters.stub import stub_invoice


async def test_verify_finds_the_live_read_models_equal_to_the_replayed_log(
    lightning, settings, proxy, ledger
):
    job = await lightning.completed_job()
    assert (
        await lightning.refund(job["jobId"], stub_invoice(job["costLedger"]["refundAmountSats"]))
    ).status == 200
    proxy.reply = lambda prompt: '{"accepted": false, "reason": "no"}'
    rejected = await lightning.create_job("no thanks")
    await lightning.pay(rejected["evalInvoice"])
    await lightning.until(rejected["jobId"])

    code, lines = await operator_command(
        "lightning_jobs", "verify", database_url=settings.database_url, db_role=settings.db_role
    )

    assert code == 0, lines
    for read_model in ("jobs", "ledger"):
        [line] = [line for line in lines if line.startswith(f"{read_model}:")]
        assert line.endswith(", 0 differences"), line


async def test_verify_finds_the_sessions_read_model_equal_to_the_replayed_log(api, settings, ledger):
    created = await api.post("/api/sessions", json={"amount_sats": 300})
    opened = await created.json()
    await api.post(f"/api/dev/stub/pay/{opened['invoice']['paymentHash']}")
    session = await (await api.get(f"/api/sessions/{opened['sessionId']}")).json()
    assert session["state"] == "active"
    bearer = {"Authorization": f"Bearer {session['macaroon']}"}
    path = f"/api/sessions/{opened['sessionId']}"
    assert (await api.post(f"{path}/request", json={"request": "a haiku"}, headers=bearer)).status == 200
    topup = await (await api.post(f"{path}/topup", json={"amount_sats": 100}, headers=bearer)).json()
    await api.post(f"/api/dev/stub/pay/{topup['topup']['paymentHash']}")
    assert (await (await api.get(path)).json())["balanceSats"] > 300

    code, lines = await operator_command(
        "lightning_jobs", "verify", database_url=settings.database_url, db_role=settings.db_role
    )

    assert code == 0, lines
    for read_model in ("sessions", "ledger"):
        [line] = [line for line in lines if line.startswith(f"{read_model}:")]
        assert line.endswith(", 0 differences"), line
