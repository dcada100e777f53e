"""The shape shared by adapters that make one HTTP request per image (OpenAI Images, Gemini)."""

from __future__ import annotations

import asyncio
from typing import Generic, Protocol, TypeVar

import httpx

from providers._http import Limits, Output, RetryPolicy, Upstream
from providers.base import ImageRequest, ImageResult, ProviderError, Target


class Endpoint(Protocol):
    """Where an adapter calls, and with which key."""

    @property
    def api_key(self) -> str: ...

    @property
    def base_url(self) -> str: ...


E = TypeVar("E", bound=Endpoint)


class DirectAdapter(Generic[E]):
    """Build a request, send it under the shared retry and concurrency policy, parse the answer.

    Subclasses supply the three pure steps; everything that touches the network is here once.
    """

    name: str

    def __init__(
        self,
        http: httpx.AsyncClient,
        endpoint: E,
        *,
        concurrency: int = 4,
        policy: RetryPolicy | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._upstream = Upstream(
            self.name,
            http,
            secret=endpoint.api_key,
            concurrency=concurrency,
            policy=policy,
            limits=limits,
        )

    def build_request(self, target: Target, request: ImageRequest) -> httpx.Request:
        """The HTTP request for one image (pure)."""
        raise NotImplementedError

    def error_for(self, target: Target, response: httpx.Response) -> ProviderError | None:
        """The typed error for a non-success answer, None for success (pure)."""
        raise NotImplementedError

    def parse_response(self, target: Target, response: httpx.Response) -> Output:
        """The image (still encoded) and what the provider said about it (pure)."""
        raise NotImplementedError

    async def generate(
        self, target: Target, request: ImageRequest, *, deadline: float
    ) -> ImageResult:
        """Generate one image; ``deadline`` is an absolute loop time."""
        async with self._upstream.call(target, deadline) as call:
            response = await self._upstream.send(
                call,
                lambda: self.build_request(target, request),
                lambda answer: self.error_for(target, answer),
            )
            # A 2K answer is ~10 MB of JSON and base64: parsed on the loop it stalled every
            # other member for tens of ms per image; in a thread the loop only shares the GIL.
            output = await asyncio.to_thread(self.parse_response, target, response)
            del response  # the raw answer (tens of MB at 4K) is not needed past the parse
            return await self._upstream.finish(call, output, base_url=self.endpoint.base_url)
