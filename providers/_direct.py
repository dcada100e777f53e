"""The shape shared by adapters that make one HTTP request per image (OpenAI Images, Gemini)."""

from __future__ import annotations

import asyncio
import logging
from typing import Generic, Protocol, TypeVar

import httpx

from providers._http import Limits, Output, Resolve, RetryPolicy, Upstream, system_resolve
from providers.base import ImageRequest, ImageResult, ProviderError, Target

log = logging.getLogger(__name__)


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
        resolve: Resolve = system_resolve,
    ) -> None:
        self.endpoint = endpoint
        self._upstream = Upstream(
            self.name,
            http,
            secret=endpoint.api_key,
            concurrency=concurrency,
            policy=policy,
            limits=limits,
            resolve=resolve,
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
        up = self._upstream
        async with up.call(target, deadline) as call:
            retried = False
            while True:
                response = await up.send(
                    call,
                    lambda: self.build_request(target, request),
                    lambda answer: self.error_for(target, answer),
                )
                try:
                    # A 2K answer is ~10 MB of JSON and base64: parsed on the loop it stalled
                    # every other member for tens of ms per image; in a thread the loop only
                    # shares the GIL.
                    output = await asyncio.to_thread(self.parse_response, target, response)
                except ProviderError as exc:
                    # An answer that held no image by chance is worth one more request.
                    if not exc.retry_once or retried or up.policy.clock() >= deadline:
                        raise
                    retried = True
                    log.info(
                        "%s: %s had no image (%s); asking once more",
                        self.name,
                        target.model_id,
                        exc.detail,
                    )
                    continue
                del response  # the raw answer (tens of MB at 4K) is not needed past the parse
                return await up.finish(call, output, base_url=self.endpoint.base_url)
