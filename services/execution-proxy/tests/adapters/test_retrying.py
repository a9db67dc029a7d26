"""The retry policy: what is retried, after how long, and how often."""

from __future__ import annotations

import pytest

from execution_proxy.adapters.providers.base import ProviderError, ProviderTimeout
from execution_proxy.adapters.providers.retrying import RetryPolicy

POLICY = RetryPolicy(retries=2, max_retry_after_seconds=10.0, first_backoff_seconds=0.2)


def transient(retry_after: float | None = None) -> ProviderError:
    return ProviderError("p", "busy", status=429, transient=True, retry_after_seconds=retry_after)


def test_the_retry_after_the_provider_asked_for_is_honoured_up_to_the_cap():
    assert POLICY.wait_before_retry(transient(3), 0) == 3
    assert POLICY.wait_before_retry(transient(60), 0) == 10.0


def test_without_retry_after_the_backoff_doubles():
    assert [POLICY.wait_before_retry(transient(), attempt) for attempt in (0, 1)] == [0.2, 0.4]


def test_no_more_than_the_configured_retries():
    assert POLICY.wait_before_retry(transient(), 2) is None


@pytest.mark.parametrize(
    "error",
    [
        ProviderError("p", "bad request", status=400),
        ProviderTimeout("p", "no answer", transient=True),  # even one marked transient
    ],
)
def test_refusals_and_timeouts_are_never_retried(error):
    assert POLICY.wait_before_retry(error, 0) is None


def test_the_policy_comes_from_the_settings(settings_for):
    policy = RetryPolicy.of(settings_for(provider_retries=5, provider_max_retry_after_seconds=1.5))

    assert (policy.retries, policy.max_retry_after_seconds) == (5, 1.5)
