from aiohttp.test_utils import TestClient


async def test_metrics_count_requests_by_route_template_method_and_status(client: TestClient) -> None:
    await client.get("/things")
    await client.get("/no/such/page/42")

    text = await (await client.get("/metrics")).text()

    assert 'http_requests_total{method="GET",route="/things",service="web-test",status="200"}' in text
    assert 'http_requests_total{method="GET",route="unmatched",service="web-test",status="404"}' in text
    assert "/no/such/page/42" not in text
    assert (
        'http_request_duration_seconds_bucket{le="0.005",method="GET",route="/things",service="web-test"}'
        in text
    )


async def test_metrics_endpoint_speaks_the_prometheus_text_format(client: TestClient) -> None:
    response = await client.get("/metrics")

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
