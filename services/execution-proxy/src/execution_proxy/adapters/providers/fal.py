"""fal's synchronous run endpoint: ``POST {FAL_API_URL}/{model}`` with ``Authorization: Key <key>``.

``sync_mode: true`` asks fal to answer once the images exist (as data URIs or CDN URLs), rather
than a queue ticket to poll. The answer is ``{images: [{url, width, height, content_type}], ...}``.
"""

from __future__ import annotations

import aiohttp

from execution_proxy.adapters.providers import wire
from execution_proxy.adapters.providers.base import ImageRequest, ImageResult

NAME = "fal"


class FalProvider:
    name = NAME

    def __init__(self, http: aiohttp.ClientSession, *, base_url: str, timeout_seconds: float) -> None:
        self._endpoint = wire.Endpoint(NAME, http, timeout_seconds)
        self._base = base_url.rstrip("/")

    async def generate(self, request: ImageRequest, api_key: str | None) -> ImageResult:
        key = wire.require_key(NAME, api_key)
        headers = {"Authorization": f"Key {key}", "Content-Type": "application/json"}
        body: dict[str, object] = {"prompt": request.prompt, "num_images": request.num_images}
        if request.image_size is not None:
            body["image_size"] = request.image_size
        body["sync_mode"] = True
        # The model id is a path ("fal-ai/flux/dev"): its slashes are the route, kept as they are.
        answer = await self._endpoint.post_json(f"{self._base}/{request.model.strip('/')}", headers, body)
        images = answer.get("images") if isinstance(answer, dict) else None
        if not isinstance(images, list):
            raise wire.malformed(NAME, "no images")
        urls = tuple(image.get("url") if isinstance(image, dict) else None for image in images)
        if not urls:
            raise wire.malformed(NAME, "no images")
        if not all(isinstance(url, str) and url for url in urls):
            raise wire.malformed(NAME, "an image without a url")
        return ImageResult(tuple(str(url) for url in urls))
