"""What a cancel answers, from whether its execution had started and how it was recorded."""

import pytest

from execution_proxy.domain.cancels import cancel_state


@pytest.mark.parametrize(
    ("started", "ended", "cancelled", "state"),
    [
        (False, False, False, "pending"),
        (True, False, False, "cancelling"),
        (True, True, True, "cancelled"),
        (True, True, False, "ended"),
        (False, True, False, "ended"),  # recorded by a buffered call, which never claims a start
    ],
)
def test_a_cancel_answers_from_the_start_and_the_record(started, ended, cancelled, state):
    assert cancel_state(started=started, ended=ended, cancelled=cancelled) == state
