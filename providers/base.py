"""The provider contract: one immutable request, one result, typed errors, the adapter protocol."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from providers.errors import SplitshotError

Quality = Literal["draft", "standard", "high"]
QUALITIES: tuple[Quality, ...] = ("draft", "standard", "high")


@dataclass(frozen=True, slots=True)
class ReferenceImage:
    """An input image for image-to-image (already read into memory)."""

    data: bytes
    mime_type: str = "image/png"
    filename: str = "reference.png"


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """What every adapter is asked to draw; immutable so it can be shared between tasks."""

    prompt: str
    aspect: str = "1:1"
    quality: Quality = "standard"
    references: tuple[ReferenceImage, ...] = ()
    mask: bytes | None = None
    seed: int | None = None
    # A salted hash of the member id (never the raw id), sent as OpenAI's `user`.
    user_hash: str | None = None
    # OpenAI `moderation` ("auto" | "low"), from the server's config.
    moderation: Literal["auto", "low"] = "auto"


@dataclass(frozen=True, slots=True)
class Target:
    """Which model an adapter should call: our catalog id plus the adapter's upstream id."""

    model_id: str
    display_name: str
    upstream_id: str


@dataclass(frozen=True, slots=True)
class ImageResult:
    """One generated image and what the provider said about it."""

    image: bytes
    mime_type: str
    width: int
    height: int
    latency_s: float
    adapter: str
    upstream_model: str
    usage: Mapping[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    caption: str | None = None
    #: what the provider says it actually used (size, quality, format, model version), for details
    echoed: Mapping[str, Any] = field(default_factory=dict)


#: every ``ProviderError.kind``, stable for logs, ``--json`` and the records: what went wrong,
#: in words an operator can act on without reading the detail
KINDS = (
    "refused",  # the provider declined the prompt or its output (safety, recitation)
    "rate_limited",  # the provider asked us to slow down
    "quota",  # the provider account is out of quota, credit or budget
    "auth",  # key, verification, permission or model id: the operator must fix something
    "bad_request",  # the provider rejected the parameters we sent
    "upstream",  # the provider failed (5xx, overload, or it produced no image)
    "timeout",  # the model's deadline passed
    "malformed",  # the answer was not a usable image (or not safe to fetch)
    "network",  # the connection to the provider failed
)


class ProviderError(SplitshotError):
    """Base of every adapter failure; ``message`` is safe to show a member."""

    retryable: bool = False
    #: one of KINDS, for logs, the JSON output and the status column
    kind: str = "upstream"
    #: seconds the provider asked us to wait before retrying, when it said so
    retry_after: float | None = None
    #: send the same request once more when the answer held no image by chance (Gemini NO_IMAGE)
    retry_once: bool = False

    def __init__(self, message: str, *, adapter: str = "", detail: str | None = None) -> None:
        super().__init__(message)
        self.adapter = adapter
        # Operator-facing detail (never a key); may be logged, not shown to members.
        self.detail = detail


class Refused(ProviderError):
    """The provider declined the prompt or its output (safety, recitation, ...). Never retried."""

    kind = "refused"

    def __init__(
        self,
        reason: str,
        *,
        adapter: str = "",
        stage: str | None = None,
        categories: tuple[str, ...] = (),
        detail: str | None = None,
    ) -> None:
        super().__init__(reason, adapter=adapter, detail=detail)
        self.reason = reason
        self.stage = stage
        self.categories = categories


class RateLimited(ProviderError):
    """The provider asked us to slow down; ``retry_after`` seconds when it said so."""

    retryable = True
    kind = "rate_limited"

    def __init__(
        self,
        message: str = "The provider is rate limiting us; try again shortly.",
        *,
        adapter: str = "",
        retry_after: float | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message, adapter=adapter, detail=detail)
        self.retry_after = retry_after


class QuotaExhausted(ProviderError):
    """The provider account is out of quota or billing; retrying will not help."""

    kind = "quota"


class TimedOut(ProviderError):
    """The model did not answer within its deadline."""

    retryable = True
    kind = "timeout"


class ConfigError(ProviderError):
    """Key, permission, verification or model-id problem: the operator must fix something."""

    kind = "auth"


class BadRequest(ProviderError):
    """The provider rejected the parameters we sent."""

    kind = "bad_request"


class Unavailable(ProviderError):
    """Server error or overload at the provider."""

    retryable = True
    kind = "upstream"


class NetworkError(Unavailable):
    """The connection to the provider failed (refused, reset, DNS)."""

    kind = "network"


class NoImage(ProviderError):
    """The provider finished without an image and without saying it declined (not a refusal)."""

    kind = "upstream"


class MalformedResponse(ProviderError):
    """The provider answered with something that is not a usable image."""

    kind = "malformed"


@runtime_checkable
class Adapter(Protocol):
    """One upstream API. Adapters never read the environment and never block the loop."""

    #: registry name, e.g. "openai", "gemini", "fal", "demo"
    name: str

    async def generate(
        self, target: Target, request: ImageRequest, *, deadline: float
    ) -> ImageResult:
        """Generate one image; ``deadline`` is an absolute ``loop.time()`` to finish by."""
        ...
