import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest
import structlog

from lf_web import configure_logging
from lf_web.logging import MASK, redact

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLWJ5dGVz"


@pytest.fixture
def json_logs() -> Iterator[Callable[[], list[dict]]]:
    """Configures the real pipeline, its stdout handler writing to a buffer; yields the lines."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("INFO", "wallet-api")
    buffer = io.StringIO()
    root.handlers[0].setStream(buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    root.handlers, root.level = saved
    structlog.reset_defaults()


def test_lines_are_json_with_timestamp_level_service_request_id_and_event(json_logs) -> None:
    with structlog.contextvars.bound_contextvars(request_id="req-1"):
        structlog.get_logger("test").info("wallet.reserved", credits=5)

    [line] = json_logs()
    assert line["event"] == "wallet.reserved" and line["credits"] == 5
    assert (line["level"], line["service"], line["request_id"]) == ("info", "wallet-api", "req-1")
    assert line["timestamp"].endswith("Z")


def test_stdlib_logging_goes_through_the_same_pipeline(json_logs) -> None:
    with structlog.contextvars.bound_contextvars(request_id="req-2"):
        logging.getLogger("aiohttp.server").warning("peer reset, Authorization: Bearer abc.def")

    [line] = json_logs()
    assert (line["level"], line["logger"], line["request_id"]) == ("warning", "aiohttp.server", "req-2")
    assert line["event"] == f"peer reset, Authorization: Bearer {MASK}"


def test_levels_below_the_configured_one_are_dropped(json_logs) -> None:
    structlog.get_logger("test").debug("noise")
    logging.getLogger("asyncpg").debug("noise")

    assert json_logs() == []


def test_secret_values_are_masked_at_any_depth(json_logs) -> None:
    headers = {"Authorization": "Bearer x", "Accept": "json"}
    structlog.get_logger("test").info(
        "call",
        password="hunter2",
        request={"headers": headers, "body": {"api_key": "k", "webhook_secret": "s"}},
        invoices=[{"preimage": "00ff", "amount_sats": 21}],
        macaroon="AgEDbG5k",
        prompt_tokens=12,
    )

    [line] = json_logs()
    assert line["password"] == MASK and line["macaroon"] == MASK
    assert line["request"]["headers"] == {"Authorization": MASK, "Accept": "json"}
    assert line["request"]["body"] == {"api_key": MASK, "webhook_secret": MASK}
    assert line["invoices"] == [{"preimage": MASK, "amount_sats": 21}]
    assert line["prompt_tokens"] == 12
    assert headers["Authorization"] == "Bearer x"  # the caller's dict is untouched


def test_tokens_inside_strings_and_tracebacks_are_masked(json_logs) -> None:
    try:
        raise ValueError(f"bad token {JWT}")
    except ValueError:
        structlog.get_logger("test").exception("failed", note=f"sent Bearer {JWT} upstream")

    [line] = json_logs()
    assert JWT not in json.dumps(line)
    assert line["note"] == f"sent Bearer {MASK} upstream"
    assert "Traceback" in line["exception"] and MASK in line["exception"]


def test_redact_masks_keys_case_insensitively_and_spares_usage_counts() -> None:
    event = {"event": "e", "X-Platform-Api-Key": "k", "SetCookie": "c", "ACCESS_TOKEN": "t", "max_tokens": 9}

    assert redact(None, "info", event) == {
        "event": "e",
        "X-Platform-Api-Key": MASK,
        "SetCookie": MASK,
        "ACCESS_TOKEN": MASK,
        "max_tokens": 9,
    }


async def test_every_line_written_during_a_request_names_its_request_id(json_logs, client) -> None:
    await client.get("/boom", headers={"X-Request-Id": "req-77"})

    lines = [line for line in json_logs() if line.get("logger", "").startswith("lf_web")]
    assert [line["event"] for line in lines] == ["http.unhandled_error", "http.request"]
    assert {line["request_id"] for line in lines} == {"req-77"}
    assert lines[1]["status"] == 500 and lines[1]["path"] == "/boom"
