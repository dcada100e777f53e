"""OpenAI Images adapter: gpt-image-2 (and gpt-image-1.5) over /images/generations and /images/edits."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from providers._direct import DirectAdapter
from providers._errors import (
    bad_request,
    config_error,
    error_json,
    error_text,
    json_body,
    malformed,
    quota_exhausted,
    rate_limited,
    refused,
    scrub,
    status_error,
    try_again_in,
)
from providers._http import Output
from providers._images import ImageProblem, data_uri, decode_base64
from providers._lift import Lifted
from providers.base import ImageRequest, ProviderError, Target
from providers.families import MAX_PROMPT, QUALITY, is_legacy, size_for

NAME = "openai"
MAX_REFERENCES = 16
MAX_MASK_BYTES = 4 * 1024 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: the longest `image_url` (data URL) the JSON edits endpoint takes
MAX_IMAGE_URL = 20_971_520

MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
REFUSAL_CODES = frozenset({"moderation_blocked", "content_policy_violation", "content_filter"})
#: codes (or types) that mean the account cannot pay: topping up helps, retrying does not
QUOTA_CODES = frozenset(
    {
        "insufficient_quota",
        "billing_hard_limit_reached",
        "billing_limit_user_error",
        "billing_not_active",
        "spend_limit_reached",
        "hard_limit_reached",
        "access_terminated",
    }
)


@dataclass(frozen=True, slots=True)
class OpenAIEndpoint:
    """Where and how to call: base URL, auth style, deployment names, output format."""

    api_key: str = field(repr=False)
    base_url: str = "https://api.openai.com/v1"
    #: "bearer" (OpenAI, most gateways) or "azure" (`api-key` header, deployment name as model)
    auth: Literal["bearer", "azure"] = "bearer"
    deployments: Mapping[str, str] = field(default_factory=dict)
    output_format: str = "png"

    def headers(self) -> dict[str, str]:
        """The auth header for this endpoint."""
        if self.auth == "azure":
            return {"api-key": self.api_key}
        return {"Authorization": f"Bearer {self.api_key}"}


# ------------------------------------------------------------------ request
def _preflight(target: Target, request: ImageRequest) -> None:
    problem = None
    if len(request.prompt) > MAX_PROMPT:
        problem = f"prompt is {len(request.prompt)} characters; OpenAI allows {MAX_PROMPT}"
    elif len(request.references) > MAX_REFERENCES:
        problem = f"{len(request.references)} reference images; OpenAI allows {MAX_REFERENCES}"
    elif request.mask is not None and not request.references:
        problem = "a mask needs an image to apply to"
    elif request.mask is not None and not request.mask.startswith(PNG_MAGIC):
        problem = "the mask must be a PNG"
    elif request.mask is not None and len(request.mask) > MAX_MASK_BYTES:
        problem = "the mask must be under 4 MB"
    if problem:
        raise bad_request(NAME, target, problem)


def build_request(endpoint: OpenAIEndpoint, target: Target, request: ImageRequest) -> httpx.Request:
    """The generations (JSON) or, with references, edits (multipart) request for one image."""
    _preflight(target, request)
    width, height = size_for(target, request, adapter=NAME)
    fields = {
        # Always explicit: old spec versions silently defaulted to dall-e-2.
        "model": endpoint.deployments.get(target.upstream_id, target.upstream_id),
        "prompt": request.prompt,
        "size": f"{width}x{height}",
        "quality": QUALITY[request.quality],
        "output_format": endpoint.output_format,
    }
    if request.user_hash:
        fields["user"] = request.user_hash
    base = endpoint.base_url.rstrip("/")
    if not request.references:
        fields["moderation"] = request.moderation
        return httpx.Request(
            "POST", f"{base}/images/generations", headers=endpoint.headers(), json=fields
        )
    if is_legacy(target.upstream_id):
        # gpt-image-1.x keeps faces and logos from the reference only when asked;
        # gpt-image-2 always works at high fidelity and rejects the field.
        fields["input_fidelity"] = "high"
    if request.moderation != "auto" and endpoint.auth == "bearer":
        json_edit = _json_edit(fields, request)
        if json_edit is not None:
            return httpx.Request(
                "POST", f"{base}/images/edits", headers=endpoint.headers(), json=json_edit
            )
    # The multipart edits schema has no `moderation` field: the default ("auto") applies.
    files = [("image[]", (ref.filename, ref.data, ref.mime_type)) for ref in request.references]
    if request.mask is not None:
        files.append(("mask", ("mask.png", request.mask, "image/png")))
    return httpx.Request(
        "POST", f"{base}/images/edits", headers=endpoint.headers(), data=fields, files=files
    )


def _json_edit(fields: dict[str, str], request: ImageRequest) -> dict[str, Any] | None:
    """The JSON form of an edit, the only one that takes `moderation`; None when too big.

    Each image travels as a data URL, which OpenAI caps at 20,971,520 characters; a reference
    past that goes multipart (and so at the default moderation) rather than failing.
    """
    images = [{"image_url": data_uri(ref.data, ref.mime_type)} for ref in request.references]
    mask = {"image_url": data_uri(request.mask, "image/png")} if request.mask is not None else None
    if any(len(item["image_url"]) > MAX_IMAGE_URL for item in (*images, *([mask] if mask else []))):
        return None
    body: dict[str, Any] = {**fields, "images": images, "moderation": request.moderation}
    if mask is not None:
        body["mask"] = mask
    return body


# ------------------------------------------------------------------ response
def parse_response(target: Target, response: httpx.Response) -> Output:
    """The first image (base64, or a link from some gateways), usage and echoed settings."""
    payload = json_body(NAME, target, response, lift_keys=("b64_json",))
    data = payload.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        raise malformed(NAME, target, "the answer has no data[0]")
    item: dict[str, Any] = data[0]
    usage = payload.get("usage")
    echoed = {
        key: payload[key]
        for key in ("size", "quality", "output_format", "background")
        if key in payload
    }
    common: dict[str, Any] = {
        "mime_type": MIME.get(str(payload.get("output_format"))),
        "usage": usage if isinstance(usage, dict) else {},
        "echoed": echoed,
    }
    b64, url = item.get("b64_json"), item.get("url")
    if isinstance(b64, (str, Lifted)) and b64:
        try:
            return Output(data=decode_base64(b64), **common)
        except ImageProblem as exc:
            raise malformed(NAME, target, f"data[0].b64_json: {exc}") from None
    if isinstance(url, str) and url:
        return Output(url=url, **common)
    raise malformed(NAME, target, "data[0] has neither b64_json nor url")


def _categories(error: Mapping[str, Any], message: str) -> tuple[str, ...]:
    details = error.get("moderation_details")
    if isinstance(details, dict) and isinstance(details.get("categories"), list):
        return tuple(str(c) for c in details["categories"])
    inner = error.get("innererror")  # Azure: content_filter_result {category: {filtered: bool}}
    if isinstance(inner, dict) and isinstance(inner.get("content_filter_result"), dict):
        results = inner["content_filter_result"].items()
        return tuple(k for k, v in results if isinstance(v, dict) and v.get("filtered"))
    found = re.search(r"safety_violations=\[([^\]]*)\]", message)
    return tuple(c.strip() for c in found.group(1).split(",") if c.strip()) if found else ()


def _is_moderation(error: Mapping[str, Any]) -> bool:
    """An image_generation_user_error is a refusal only when moderation says so.

    The same type covers an invalid mask or size, which is our mistake, not the prompt's.
    """
    if isinstance(error.get("moderation_details"), dict):
        return True
    code = str(error.get("code") or "")
    if code:
        return "moderation" in code or "safety" in code or "content_policy" in code
    return "safety system" in str(error.get("message") or "").lower()


def error_for(target: Target, response: httpx.Response) -> ProviderError | None:
    """The typed error for a non-2xx answer (None for success)."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    body = error_json(response)
    error = body.get("error")
    error = error if isinstance(error, dict) else {}
    code, kind = str(error.get("code") or ""), str(error.get("type") or "")
    message = scrub(str(error.get("message") or "")) or error_text(response)
    model = target.upstream_id
    said = f"OpenAI answered {status} {code or kind}: {message}"

    if code in REFUSAL_CODES or (kind == "image_generation_user_error" and _is_moderation(error)):
        details = error.get("moderation_details")
        stage = details.get("moderation_stage") if isinstance(details, dict) else None
        return refused(
            NAME,
            target,
            label="safety",
            codes=_categories(error, message),
            stage=str(stage) if stage else None,
            detail=said,
        )
    if QUOTA_CODES & {code, kind}:
        return quota_exhausted(
            NAME,
            target,
            f"OpenAI says the account cannot pay for images ({code or kind}): add credit or raise "
            "the budget and spend limits at platform.openai.com/settings/organization/billing "
            f"and /limits. {message}",
        )
    if status == 429:
        error_obj = rate_limited(NAME, target, said)
        error_obj.retry_after = try_again_in(message)
        return error_obj
    if status == 401:
        return config_error(
            NAME,
            target,
            f"OpenAI rejected the API key (401): set a current OPENAI_API_KEY (or AZURE_OPENAI_API_KEY "
            f"for Azure) from the project that should pay for {model}. {message}",
        )
    if 400 <= status < 500 and "must be verified" in message.lower():  # reported as 403, or 400
        return config_error(
            NAME,
            target,
            f"OpenAI says the organization must be verified to use {model}: verify it at "
            "platform.openai.com/settings/organization/general, wait up to 30 minutes, then "
            "create a fresh key",
        )
    if status == 403:
        return config_error(
            NAME,
            target,
            f"OpenAI denied access to {model} (403): give the key's project access to the model "
            f"with image write permission. {message}",
        )
    if status == 404:
        return config_error(
            NAME,
            target,
            f"OpenAI does not know model {model!r} (404): check the catalog's upstream id, "
            f"OPENAI_DEPLOYMENTS (Azure deployment names) and OPENAI_BASE_URL. {message}",
        )
    return status_error(NAME, target, response, said)


# ------------------------------------------------------------------ adapter
class OpenAIImages(DirectAdapter[OpenAIEndpoint]):
    """GPT-Image models over OpenAI's Images API, an Azure deployment or a compatible gateway."""

    name = NAME

    def build_request(self, target: Target, request: ImageRequest) -> httpx.Request:
        """The HTTP request for one image."""
        return build_request(self.endpoint, target, request)

    def error_for(self, target: Target, response: httpx.Response) -> ProviderError | None:
        """The typed error for a non-success answer, None for success."""
        return error_for(target, response)

    def parse_response(self, target: Target, response: httpx.Response) -> Output:
        """The image and what the provider said about it."""
        return parse_response(target, response)
