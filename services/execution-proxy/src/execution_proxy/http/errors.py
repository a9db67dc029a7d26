"""execution-proxy's refusals, as codes of the catalogue (answered by ``lf_web``'s error middleware)."""

from __future__ import annotations

from execution_proxy.domain import errors
from lf_contracts import errors as codes
from lf_web import Refusals

CODES: Refusals = {
    errors.InvalidMessages: codes.EXECUTE_INVALID_MESSAGES,
    errors.ModelNotFound: codes.EXECUTE_MODEL_NOT_FOUND,
    errors.PricingNotFound: codes.PRICING_NOT_FOUND,
    errors.PricingFailed: codes.EXECUTE_PRICING_FAILED,
    errors.UnsupportedProvider: codes.EXECUTE_UNSUPPORTED_PROVIDER,
    errors.ProviderMismatch: codes.EXECUTE_PROVIDER_MISMATCH,
    errors.KeyResolutionFailed: codes.EXECUTE_KEY_RESOLUTION_FAILED,
    errors.ExecutionCancelled: codes.EXECUTE_CANCELLED,
    errors.RunningElsewhere: codes.EXECUTE_RUNNING_ELSEWHERE,
    errors.InvalidKey: codes.VALIDATION_ERROR,
    errors.InvalidCatalogueChange: codes.VALIDATION_ERROR,
}
