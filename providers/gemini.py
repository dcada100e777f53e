"""Gemini adapter: Nano Banana Pro and Nano Banana 2 over `models/{model}:generateContent`."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import httpx

from providers._direct import DirectAdapter
from providers._errors import (
    bad_request,
    config_error,
    error_json,
    error_text,
    json_body,
    malformed,
    no_image,
    quota_exhausted,
    rate_limited,
    refused,
    scrub,
    status_error,
    try_again_in,
)
from providers._http import Output
from providers._images import ImageProblem, decode_base64
from providers._lift import Lifted
from providers.base import ImageRequest, ProviderError, Refused, Target
from providers.families import IMAGE_SIZE, aspect_for

NAME = "gemini"
MAX_REFERENCES = 14
#: retired ids and what replaced them, for the 404 advice
RETIRED = {
    "gemini-3-pro-image-preview": "gemini-3-pro-image",
    "gemini-3.1-flash-image-preview": "gemini-3.1-flash-image",
    "gemini-2.5-flash-image": "gemini-3.1-flash-image",
}
#: finish reasons that mean "no image, on purpose", with plain words for members
REFUSALS = {
    "SAFETY": "safety",
    "IMAGE_SAFETY": "safety",
    "PROHIBITED_CONTENT": "prohibited content",
    "IMAGE_PROHIBITED_CONTENT": "prohibited content",
    "BLOCKLIST": "blocked terms",
    "SPII": "personal information",
    "RECITATION": "too close to existing work",
    "IMAGE_RECITATION": "too close to existing work",
    "IMAGE_OTHER": "image policy",
    "JAILBREAK": "safety",
    "MODEL_ARMOR": "safety",
}
#: finish reasons that mean "no image, by chance": failures (refunded), not refusals;
#: NO_IMAGE is worth one more try, OTHER is not
NO_IMAGE_RETRY = frozenset({"NO_IMAGE"})
FAILURES = frozenset({"NO_IMAGE", "OTHER"})


@dataclass(frozen=True, slots=True)
class GeminiEndpoint:
    """Where and how to call the Gemini API."""

    api_key: str = field(repr=False)
    base_url: str = "https://generativelanguage.googleapis.com"


def build_request(endpoint: GeminiEndpoint, target: Target, request: ImageRequest) -> httpx.Request:
    """The generateContent request: prompt, inline references and the image config."""
    if len(request.references) > MAX_REFERENCES:
        problem = f"{len(request.references)} reference images; Gemini allows {MAX_REFERENCES}"
        raise bad_request(NAME, target, problem)
    if request.mask is not None:
        raise bad_request(NAME, target, "Gemini image models take no mask; send references only")
    parts: list[dict[str, Any]] = [{"text": request.prompt}]
    for ref in request.references:
        data = base64.b64encode(ref.data).decode("ascii")
        parts.append({"inline_data": {"mime_type": ref.mime_type, "data": data}})
    config: dict[str, Any] = {
        # TEXT too, so a refusal or a caption can come back in words.
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {
            "aspectRatio": aspect_for(target, request, adapter=NAME),
            "imageSize": IMAGE_SIZE[request.quality],
        },
    }
    if request.seed is not None:
        config["seed"] = request.seed
    body = {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}
    url = f"{endpoint.base_url.rstrip('/')}/v1beta/models/{target.upstream_id}:generateContent"
    return httpx.Request("POST", url, headers={"x-goog-api-key": endpoint.api_key}, json=body)


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _prompt_block(target: Target, payload: dict[str, Any]) -> Refused | None:
    feedback = payload.get("promptFeedback")
    if not isinstance(feedback, dict) or not feedback.get("blockReason"):
        return None
    block = str(feedback["blockReason"])
    said = scrub(str(feedback.get("blockReasonMessage") or ""))
    detail = f"promptFeedback.blockReason={block} {said}".strip()
    label = REFUSALS.get(block, "policy")
    return refused(NAME, target, label=label, codes=(block,), stage="input", detail=detail)


@dataclass(frozen=True, slots=True)
class _Parts:
    """What a candidate's parts hold: the answer image, the last thought image, the text."""

    image: dict[str, Any] | None
    thought_image: dict[str, Any] | None
    caption: str | None


def _answer_parts(candidate: dict[str, Any]) -> _Parts:
    """The last non-thought inline image, the last thought image, and the non-thought text."""
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    image: dict[str, Any] | None = None
    thought_image: dict[str, Any] | None = None
    texts: list[str] = []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        inline = part.get("inlineData") or part.get("inline_data")
        if part.get("thought"):
            # Interim "thought" text and images are not the answer, unless nothing else is.
            if isinstance(inline, dict):
                thought_image = inline
            continue
        if isinstance(inline, dict):
            image = inline
        elif isinstance(part.get("text"), str):
            texts.append(part["text"])
    return _Parts(image, thought_image, scrub(" ".join(texts).strip()) or None)


def _no_image(target: Target, candidate: dict[str, Any], caption: str | None) -> ProviderError:
    finish = str(candidate.get("finishReason") or "")
    said = scrub(str(candidate.get("finishMessage") or caption or ""))
    detail = f"finishReason={finish or 'none'}, no image. {said}".strip()
    if finish in REFUSALS:
        label = REFUSALS[finish]
        return refused(NAME, target, label=label, codes=(finish,), stage="output", detail=detail)
    if finish in FAILURES:
        return no_image(NAME, target, detail, retry_once=finish in NO_IMAGE_RETRY)
    if finish in ("STOP", "") and caption:
        # The model answered in words instead of drawing: its words are the reason.
        message = f'{target.display_name} declined this prompt: "{_short(caption)}"'
        return Refused(message, adapter=NAME, stage="output", detail=detail)
    return malformed(NAME, target, detail)


def parse_response(target: Target, response: httpx.Response) -> Output:
    """The last non-thought image, its caption, usage; refusals as the typed error."""
    payload = json_body(NAME, target, response, lift_keys=("data",))
    blocked = _prompt_block(target, payload)
    candidates = payload.get("candidates")
    if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
        raise blocked or malformed(NAME, target, "the answer has no candidates")
    candidate: dict[str, Any] = candidates[0]
    parts = _answer_parts(candidate)
    image, caption = parts.image, parts.caption
    finish = str(candidate.get("finishReason") or "")
    if image is None and finish == "STOP" and parts.thought_image is not None and not blocked:
        # Some answers mark their only (billed) image as a thought; a clean STOP means it is
        # the result, and calling it malformed would refund an image we paid for.
        image = parts.thought_image
    if image is None:
        raise blocked or _no_image(target, candidate, caption)
    try:
        encoded = image.get("data")
        data = decode_base64(encoded if isinstance(encoded, Lifted) else str(encoded or ""))
    except ImageProblem as exc:
        raise malformed(NAME, target, f"inlineData.data: {exc}") from None
    mime = image.get("mimeType") or image.get("mime_type")
    echoed = {k: payload[k] for k in ("modelVersion",) if k in payload}
    if finish:
        echoed["finishReason"] = finish
    usage = payload.get("usageMetadata")
    response_id = payload.get("responseId")
    return Output(
        data=data,
        mime_type=str(mime) if mime else None,
        usage=usage if isinstance(usage, dict) else {},
        echoed=echoed,
        caption=caption,
        request_id=str(response_id) if response_id else None,
    )


def _retry_delay(details: list[Any]) -> float | None:
    for item in details:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("RetryInfo"):
            raw = item.get("retryDelay")
            try:
                return float(str(raw).rstrip("s"))
            except ValueError:
                return None
    return None


def _reasons(details: list[Any]) -> set[str]:
    return {str(d.get("reason")) for d in details if isinstance(d, dict) and d.get("reason")}


def error_for(target: Target, response: httpx.Response) -> ProviderError | None:
    """The typed error for a non-2xx answer (None for success)."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    body = error_json(response)
    error = body.get("error")
    error = error if isinstance(error, dict) else {}
    raw_details = error.get("details")
    details: list[Any] = raw_details if isinstance(raw_details, list) else []
    state = str(error.get("status") or "")
    message = scrub(str(error.get("message") or "")) or error_text(response)
    model = target.upstream_id
    said = f"Gemini answered {status} {state}: {message}"
    key_advice = (
        "create a key at aistudio.google.com/apikey in a project with billing and the "
        "Generative Language API enabled, and set GEMINI_API_KEY (or GOOGLE_API_KEY)"
    )

    if status == 400 and (
        "API_KEY_INVALID" in _reasons(details) or "api key not valid" in message.lower()
    ):
        return config_error(
            NAME, target, f"Gemini rejected the API key (400 API_KEY_INVALID): {key_advice}"
        )
    if status == 400 and state == "FAILED_PRECONDITION":
        return config_error(
            NAME,
            target,
            f"{said} — usually billing is not enabled for the key's project, or the region is unsupported",
        )
    if status in (401, 403):
        return config_error(
            NAME, target, f"Gemini denied the key ({status} {state}): {key_advice}. {message}"
        )
    if status == 404 and model in RETIRED:
        return config_error(
            NAME, target, f"Gemini model id {model} was retired (404); use {RETIRED[model]}"
        )
    if status == 404:
        return config_error(
            NAME,
            target,
            f"Gemini model id {model} does not exist (404); check the catalog's Gemini upstream id",
        )
    if status == 429 and "limit: 0" in message:
        return quota_exhausted(
            NAME,
            target,
            f"Gemini quota for {model} is 0 (free tier, which image models do not have): enable billing "
            "for the key's project at aistudio.google.com",
        )
    if status == 429:
        error_obj = rate_limited(NAME, target, said)
        error_obj.retry_after = _retry_delay(details) or try_again_in(message)
        return error_obj
    return status_error(NAME, target, response, said)


class GeminiImages(DirectAdapter[GeminiEndpoint]):
    """Nano Banana models over the Gemini API (or a compatible gateway)."""

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
