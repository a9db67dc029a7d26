-- LNbits' webhook names a payment by its hash (http/lnbits.py): which job or session it pays is
-- looked up by that hash, so each invoice column is indexed (a webhook costs one index probe).
CREATE INDEX jobs_eval_payment_hash ON jobs (eval_payment_hash);
CREATE INDEX jobs_work_payment_hash ON jobs (work_payment_hash) WHERE work_payment_hash IS NOT NULL;
CREATE INDEX sessions_deposit_payment_hash ON sessions (deposit_payment_hash);
CREATE INDEX sessions_topup_payment_hash ON sessions (topup_payment_hash) WHERE topup_payment_hash IS NOT NULL;
