"""The catalogue's and the partners' refusals, as codes of the catalogue (answered by ``lf_web``'s
error middleware)."""

from __future__ import annotations

from lf_contracts import errors as codes
from lf_web import Refusals
from platform_api.domain import errors, partner_errors

CODES: Refusals = {
    errors.InvalidDefinition: codes.VALIDATION_ERROR,
    errors.LensNotFound: codes.LENS_NOT_FOUND,
    errors.WorkflowNotFound: codes.WORKFLOW_NOT_FOUND,
    partner_errors.UnknownPartner: codes.PARTNER_NOT_FOUND,
    partner_errors.PartnerNotProvisioned: codes.PARTNER_NOT_PROVISIONED,
    errors.RunNotFound: codes.RUN_NOT_FOUND,
    errors.IdempotencyConflict: codes.RUN_IDEMPOTENCY_CONFLICT,
}
