"""fal.ai queue adapter: submit, poll the returned status URL, fetch the result, download the image."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from providers._errors import (
    bad_request,
    config_error,
    error_json,
    error_text,
    json_body,
    malformed,
    quota_exhausted,
    refused,
    scrub,
    status_error,
    timed_out,
)
from providers._http import (
    Call,
    Limits,
    Output,
    Resolve,
    RetryPolicy,
    Upstream,
    same_origin,
    system_resolve,
)
from providers._images import data_uri, shrink_reference
from providers.base import ImageRequest, ImageResult, ProviderError, Quality, Target, TimedOut
from providers.families import MAX_PROMPT, QUALITY, aspect_for, is_legacy, size_for

log = logging.getLogger(__name__)

NAME = "fal"
RESOLUTION: Mapping[Quality, str] = {"draft": "1K", "standard": "2K", "high": "4K"}
MAX_REFERENCES = {"nano-banana": 14, "gpt-image": 16}
QUEUE_STATES = ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
#: a cancel is best effort and must not hold the caller long past its deadline
CANCEL_TIMEOUT = 1.0
#: references travel inside the JSON as data URIs (a 20 MB photo would be a 27 MB request),
#: so bigger ones are scaled down first: 2048 px is more than either model family reads
#: (Gemini and GPT-Image work on ~1–2K inputs) and keeps each one to a few MB
MAX_REFERENCE_EDGE = 2048
MAX_REFERENCE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FalEndpoint:
    """Where and how to call fal's queue."""

    key: str = field(repr=False)
    base_url: str = "https://queue.fal.run"

    def headers(self) -> dict[str, str]:
        """The auth header fal wants on every queue call (submit, status, result, cancel)."""
        return {"Authorization": f"Key {self.key}"}


@dataclass(frozen=True, slots=True)
class Job:
    """A submitted request and the URLs fal returned for it (never built by us)."""

    request_id: str
    status_url: str
    response_url: str
    cancel_url: str | None = None


def fit_references(
    request: ImageRequest,
    *,
    max_edge: int = MAX_REFERENCE_EDGE,
    max_bytes: int = MAX_REFERENCE_BYTES,
) -> ImageRequest:
    """``request`` with each reference scaled to fit the data-URI caps (CPU work: run off-loop)."""
    if not request.references:
        return request
    refs = tuple(
        shrink_reference(ref, max_edge=max_edge, max_bytes=max_bytes) for ref in request.references
    )
    return replace(request, references=refs)


def endpoint_id(target: Target, request: ImageRequest) -> str:
    """The fal endpoint: the upstream id, plus '/edit' when there are reference images."""
    return f"{target.upstream_id}/edit" if request.references else target.upstream_id


def build_input(target: Target, request: ImageRequest) -> dict[str, Any]:
    """The model input for the endpoint family (Nano Banana or GPT-Image)."""
    upstream = target.upstream_id
    family = next((name for name in MAX_REFERENCES if name in upstream), None)
    if family is None:
        detail = f"fal endpoint {upstream!r} is neither Nano Banana nor GPT-Image; fix the catalog"
        raise config_error(NAME, target, detail)
    if len(request.references) > MAX_REFERENCES[family]:
        limit = MAX_REFERENCES[family]
        raise bad_request(
            NAME, target, f"{len(request.references)} reference images; {upstream} allows {limit}"
        )
    body: dict[str, Any] = {"prompt": request.prompt, "num_images": 1, "output_format": "png"}
    if family == "nano-banana":
        if request.mask is not None:
            raise bad_request(
                NAME, target, "Nano Banana endpoints take no mask; send references only"
            )
        body["aspect_ratio"] = aspect_for(target, request, adapter=NAME)
        body["resolution"] = RESOLUTION[request.quality]
        if request.seed is not None:
            body["seed"] = request.seed
    else:
        if len(request.prompt) > MAX_PROMPT:
            raise bad_request(NAME, target, f"prompt is over {MAX_PROMPT} characters")
        width, height = size_for(target, request, adapter=NAME)
        legacy = is_legacy(upstream)
        # gpt-image-1.5 takes only its preset strings; gpt-image-2 takes explicit pixels.
        body["image_size"] = f"{width}x{height}" if legacy else {"width": width, "height": height}
        body["quality"] = QUALITY[request.quality]  # fal defaults to "high": always say it
        if request.mask is not None:
            if not request.references:
                raise bad_request(NAME, target, "a mask needs an image to apply to")
            mask_field = "mask_image_url" if legacy else "mask_url"
            body[mask_field] = data_uri(request.mask, "image/png")
    if request.references:
        # We hold the reference bytes, not URLs; fal accepts base64 data URIs for image URLs.
        body["image_urls"] = [data_uri(ref.data, ref.mime_type) for ref in request.references]
    return body


def build_submit(endpoint: FalEndpoint, target: Target, request: ImageRequest) -> httpx.Request:
    """The queue submit request for one image."""
    url = f"{endpoint.base_url.rstrip('/')}/{endpoint_id(target, request)}"
    return httpx.Request("POST", url, headers=endpoint.headers(), json=build_input(target, request))


def _queue_url(endpoint: FalEndpoint, target: Target, payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise malformed(NAME, target, f"the submit answer has no {name}")
    if not same_origin(value, endpoint.base_url):
        host = httpx.URL(value).host
        raise malformed(
            NAME, target, f"fal returned a {name} on another host ({host!r}); the key stays home"
        )
    return value


def parse_submit(endpoint: FalEndpoint, target: Target, response: httpx.Response) -> Job:
    """The queue's URLs for this request; each must be on the base URL's host (it gets the key)."""
    payload = json_body(NAME, target, response)
    return Job(
        request_id=str(payload.get("request_id") or ""),
        status_url=_queue_url(endpoint, target, payload, "status_url"),
        response_url=_queue_url(endpoint, target, payload, "response_url"),
        cancel_url=_queue_url(endpoint, target, payload, "cancel_url")
        if payload.get("cancel_url")
        else None,
    )


def parse_status(target: Target, response: httpx.Response) -> str:
    """IN_QUEUE, IN_PROGRESS or COMPLETED."""
    status = json_body(NAME, target, response).get("status")
    if status not in QUEUE_STATES:
        raise malformed(NAME, target, f"unknown queue status {status!r}")
    return str(status)


def parse_result(target: Target, response: httpx.Response) -> Output:
    """The first image's link and type; an empty list is how some upstream filters decline."""
    payload = json_body(NAME, target, response)
    images = payload.get("images")
    if not isinstance(images, list):
        raise malformed(NAME, target, "the result has no images list")
    if not images:
        detail = "fal completed with an empty images list (the upstream model's filter declined)"
        raise refused(NAME, target, label="no image returned", stage="output", detail=detail)
    first: dict[str, Any] = images[0] if isinstance(images[0], dict) else {}
    url = first.get("url")
    if not isinstance(url, str) or not url:
        raise malformed(NAME, target, "images[0] has no url")
    echoed: dict[str, Any] = {k: first[k] for k in ("width", "height", "file_size") if k in first}
    if "seed" in payload:
        echoed["seed"] = payload["seed"]
    description = payload.get("description")
    content_type = first.get("content_type")
    return Output(
        url=url,
        mime_type=str(content_type) if content_type else None,
        echoed=echoed,
        caption=scrub(description) if isinstance(description, str) and description else None,
    )


def error_for(target: Target, response: httpx.Response, *, stage: str) -> ProviderError | None:
    """The typed error for a non-2xx answer at ``stage`` (submit, status or result)."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    body = error_json(response)
    detail = body.get("detail")
    text = error_text(response)
    said = f"fal answered {status} on {stage}: {text}"
    if status == 422 and isinstance(detail, list):
        hits = [
            d for d in detail if isinstance(d, dict) and d.get("type") == "content_policy_violation"
        ]
        if hits:
            codes = tuple(dict.fromkeys(str(c) for d in hits for c in d.get("categories") or ()))
            why = scrub("; ".join(str(d.get("msg") or "") for d in hits))
            return refused(
                NAME,
                target,
                label="content policy",
                codes=codes,
                detail=f"fal content_policy_violation: {why}",
            )
    if status == 401:
        return config_error(
            NAME,
            target,
            "fal rejected FAL_KEY (401): create a key at fal.ai/dashboard/keys and set FAL_KEY",
        )
    if status == 403 and any(word in text.lower() for word in ("balance", "locked")):
        return quota_exhausted(
            NAME,
            target,
            f"fal says the account is locked or out of balance: top up at fal.ai/dashboard/billing. {text}",
        )
    if status == 403:
        return config_error(
            NAME,
            target,
            f"fal denied access (403): check FAL_KEY is an API key with access to {target.upstream_id}. {text}",
        )
    if status == 404 and stage == "submit":
        return config_error(
            NAME,
            target,
            f"fal has no endpoint {target.upstream_id!r} (404): check the catalog's fal upstream id",
        )
    if status == 404:
        return malformed(NAME, target, said)
    return status_error(NAME, target, response, said)


class FalImages:
    """Nano Banana and GPT-Image endpoints through fal.ai's queue."""

    name = NAME

    def __init__(
        self,
        http: httpx.AsyncClient,
        endpoint: FalEndpoint,
        *,
        concurrency: int = 4,
        policy: RetryPolicy | None = None,
        limits: Limits | None = None,
        poll_interval: float = 1.0,
        max_poll_interval: float = 2.0,
        resolve: Resolve = system_resolve,
    ) -> None:
        self.endpoint = endpoint
        self._upstream = Upstream(
            NAME,
            http,
            secret=endpoint.key,
            concurrency=concurrency,
            policy=policy,
            limits=limits,
            resolve=resolve,
        )
        self._poll_interval = poll_interval
        self._max_poll_interval = max_poll_interval

    async def generate(
        self, target: Target, request: ImageRequest, *, deadline: float
    ) -> ImageResult:
        """Generate one image; ``deadline`` is an absolute loop time."""
        up = self._upstream
        if request.references:
            request = await asyncio.to_thread(fit_references, request)
        async with up.call(target, deadline) as call:
            submitted = await up.send(
                call,
                lambda: build_submit(self.endpoint, target, request),
                lambda answer: error_for(target, answer, stage="submit"),
            )
            job = parse_submit(self.endpoint, target, submitted)
            call.request_id = job.request_id or call.request_id
            try:
                await self._wait(call, job)
            except (TimedOut, asyncio.CancelledError):
                await self._cancel(job)
                raise
            result = await up.send(
                call,
                lambda: httpx.Request("GET", job.response_url, headers=self.endpoint.headers()),
                lambda answer: error_for(target, answer, stage="result"),
            )
            output = parse_result(target, result)
            upstream = endpoint_id(target, request)
            return await up.finish(call, output, base_url=self.endpoint.base_url, upstream=upstream)

    async def _wait(self, call: Call, job: Job) -> None:
        """Poll the status URL until COMPLETED; TimedOut when the next poll would pass the deadline."""
        policy = self._upstream.policy
        interval = self._poll_interval
        while True:
            answer = await self._upstream.send(
                call,
                lambda: httpx.Request("GET", job.status_url, headers=self.endpoint.headers()),
                lambda response: error_for(call.target, response, stage="status"),
            )
            status = parse_status(call.target, answer)
            if status == "COMPLETED":
                return
            if policy.clock() + interval >= call.deadline:
                detail = (
                    f"fal request {job.request_id} was still {status} at the deadline; cancelled"
                )
                raise timed_out(NAME, call.target, detail)
            await policy.sleep(interval)
            interval = min(interval * 1.5, self._max_poll_interval)

    async def _cancel(self, job: Job) -> None:
        """Best-effort `PUT cancel_url` (fal only cancels requests that have not started)."""
        if not job.cancel_url:
            return
        try:
            async with asyncio.timeout(CANCEL_TIMEOUT):
                response = await self._upstream.http.put(
                    job.cancel_url, headers=self.endpoint.headers(), timeout=CANCEL_TIMEOUT
                )
            log.debug("fal: cancel of %s answered %s", job.request_id, response.status_code)
        except (httpx.HTTPError, TimeoutError) as exc:
            log.debug("fal: could not cancel %s (%s)", job.request_id, type(exc).__name__)
