"""A fake fal: ``POST /{model}`` (e.g. ``/fal-ai/flux/dev``), the synchronous run endpoint.

``Authorization: Key <key>``; the body ``{prompt, num_images, image_size, sync_mode}`` is checked as
fal checks it (422 ``{"detail": [{loc, msg, type}]}``); the answer is
``{images: [{url, width, height, content_type}], timings, seed, has_nsfw_concepts, prompt}``.
Other errors are ``{"detail": "..."}``. ``fail_with``, ``hang`` and ``recover`` work as in every
fake (``lf_testing.fakes.provider``); the stream knobs mean nothing here. ``images_at_most`` answers
fewer images than were asked for, as fal may.

    python -m lf_testing.fakes.fal --port 8795   # then FAL_API_URL=http://127.0.0.1:8795
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from lf_testing.fakes.provider import FakeProvider, run

SIZES = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}


class FakeFal(FakeProvider):
    name = "fal"
    default_port = 8795
    images_at_most: int | None = None
    """Answer at most this many images whatever was asked (None: as many as asked), as fal may."""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{model:.+}", self._run)

    def key_of(self, request: web.Request) -> str | None:
        value = request.headers.get("Authorization", "")
        return value.removeprefix("Key ") if value.startswith("Key ") else None

    def error(self, status: int, message: str | None = None) -> web.Response:
        text = message or ("Unauthorized" if status == 401 else f"fake error {status}")
        return web.json_response({"detail": text}, status=status)

    async def _run(self, request: web.Request) -> web.StreamResponse:
        call, refusal = await self.admit(request)
        if refusal is not None:
            return refusal
        body = call.body
        problems = invalid(body)
        if problems:
            return web.json_response({"detail": problems}, status=422)
        width, height = SIZES[body.get("image_size", "landscape_4_3")]
        count = body.get("num_images", 1)
        if self.images_at_most is not None:
            count = min(count, self.images_at_most)
        images = [
            {
                "url": f"https://v3.fal.media/files/fake/{uuid.uuid4().hex}.jpeg",
                "width": width,
                "height": height,
                "content_type": "image/jpeg",
            }
            for _ in range(count)
        ]
        return web.json_response(
            {
                "images": images,
                "timings": {"inference": 0.01},
                "seed": 42,
                "has_nsfw_concepts": [False] * len(images),
                "prompt": body["prompt"],
            }
        )


def invalid(body: dict[str, Any]) -> list[dict[str, Any]]:
    problems = []
    if not isinstance(body.get("prompt"), str) or not body["prompt"]:
        problems.append(problem("prompt", "field required", "value_error.missing"))
    count = body.get("num_images", 1)
    if not isinstance(count, int) or not 1 <= count <= 4:
        problems.append(problem("num_images", "ensure this value is between 1 and 4", "value_error"))
    if body.get("image_size", "landscape_4_3") not in SIZES:
        problems.append(problem("image_size", "unexpected value", "value_error.const"))
    return problems


def problem(field: str, message: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", field], "msg": message, "type": kind}


if __name__ == "__main__":
    run(FakeFal)
