"""Integration documents: what an integration is, validated before it is stored.

    code: ECHO_ORDER            # uppercase identifier
    version: 01.00.0000
    name: Echo an order
    trigger: {method: POST, path: "/orders/{id}", scope: "urn:tessera:integration:run"}
    steps:
      - {type: map, output: {orderId: path.id, who: caller.user_displayname, lines: body.lines}}
      - {type: invoke, url: "https://backend.example.test/orders/{id}", method: POST,
         auth: {type: oauth_client_credentials, token_url: …, client_id: …, client_secret: …,
               dpop: true}}     # optional: a DPoP-bound token (RFC 9449), a proof per call
      - {type: invoke, url: "https://orders.example.test/orders/{id}", method: GET,
         auth: {type: oauth_token_exchange, token_url: …, client_id: …, client_secret: …,
               audience: "https://orders.example.test"}}  # on behalf of the caller (RFC 8693)
      - {type: respond, status: 200, body: "{order: last, by: caller.sub}"}

Documents arrive as JSON or YAML (no YAML aliases: they can expand a small document into a huge
one). Each problem is reported with its place, such as `steps[1].url`. Connection secrets are
redacted whenever a document is shown; the stored copy keeps them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    SerializationInfo,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from tessera.integration.expressions import ExpressionError, check_template, compile_expression
from tessera.integration.paths import TemplateError, parse_path, url_placeholders
from tessera.integration.scopes import SCOPE_RUN
from tessera.shared.dpop import normalize_htu

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "REDACTED",
    "Auth",
    "BasicAuth",
    "ClientCredentialsAuth",
    "DocumentError",
    "IntegrationDocument",
    "InvokeStep",
    "MapStep",
    "NoAuth",
    "RespondStep",
    "Step",
    "TokenExchangeAuth",
    "Trigger",
    "UnsupportedDocumentType",
    "load_document",
    "parse_document",
]

MAX_DOCUMENT_BYTES = 256 * 1024
REDACTED = "********"
_T = TypeVar("_T")
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,100}$")  # RFC 9110 §5.6.2 token
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,200}$")  # RFC 6749 §3.3 scope-token
_FRAMING = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"}
)
_JSON_TYPES = ("application/json",)
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


class DocumentError(ValueError):
    """A document that cannot be an integration; `errors` names each problem and its place."""

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class UnsupportedDocumentType(DocumentError):
    """A body in a media type other than JSON or YAML (415)."""


# --- field types ---------------------------------------------------------------------------------


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _checked(check: Callable[[_T], object], value: _T) -> _T:
    """The value when `check` accepts it; its `ExpressionError` as the ValueError pydantic wants."""
    try:
        check(value)
    except ExpressionError as exc:
        raise ValueError(str(exc)) from None
    return value


def _expression(value: str) -> str:
    return _checked(compile_expression, value)


def _template(value: Any) -> Any:
    return _checked(check_template, value)


def _headers(value: dict[str, str]) -> dict[str, str]:
    if len(value) > 50:
        raise ValueError("at most 50 headers")
    for name, item in value.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"{name!r} is not a header name")
        if name.lower() in _FRAMING:
            raise ValueError(f"{name} is set by the HTTP layer, not by a document")
        if len(item) > 4096 or any(_control(c) for c in item):
            raise ValueError(f"the value of {name} has control characters or is too long")
    return value


def _control(char: str) -> bool:
    return (ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F


def _http_url(value: str) -> str:
    probe = re.sub(r"\{[^}]*\}", "x", value)  # placeholders are checked against the trigger
    parts = urlsplit(probe)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an http:// or https:// URL with a host is required")
    if parts.username is not None or parts.password is not None:
        raise ValueError("put credentials in `auth`, not in the URL")
    if parts.fragment or "#" in value:
        raise ValueError("a URL to call has no #fragment")
    if "{" in urlsplit(value).netloc:
        raise ValueError("placeholders may appear in the path and query only")
    return value


def _not_redacted(value: SecretStr) -> SecretStr:
    if value.get_secret_value() == REDACTED:
        raise ValueError("send the secret itself, not the redacted value shown by GET")
    return value


Method = Annotated[Literal["GET", "POST", "PUT", "PATCH", "DELETE"], BeforeValidator(_upper)]
Expression = Annotated[str, AfterValidator(_expression)]
Headers = Annotated[dict[str, str], AfterValidator(_headers)]
HttpUrl = Annotated[str, Field(max_length=2000), AfterValidator(_http_url)]
Secret = Annotated[SecretStr, Field(min_length=1, max_length=2000), AfterValidator(_not_redacted)]
StepName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
Scope = Annotated[str, Field(pattern=_SCOPE.pattern)]


def _show_secret(value: SecretStr, info: SerializationInfo) -> str:
    """Stored documents keep secrets (`context={"reveal": True}`); every view redacts them."""
    context = info.context if isinstance(info.context, dict) else {}
    return value.get_secret_value() if context.get("reveal") else REDACTED


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- outbound authentication ---------------------------------------------------------------------


class NoAuth(_Model):
    type: Literal["none"] = "none"


class BasicAuth(_Model):
    """RFC 7617 Basic authentication."""

    type: Literal["basic"]
    username: str = Field(min_length=1, max_length=200)
    password: Secret

    @field_serializer("password")
    def _dump_password(self, value: SecretStr, info: SerializationInfo) -> str:
        return _show_secret(value, info)


class _TokenAuth(_Model):
    """What an access token from a token endpoint needs: its URL, the app's credentials
    (client_secret_basic), the scope. With `dpop: true` the token is DPoP-bound (RFC 9449) to
    a key the service holds, and each call carries a proof of that key."""

    token_url: HttpUrl
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: Secret
    scope: Annotated[str, Field(max_length=2000)] | None = None
    dpop: bool = False

    @field_serializer("client_secret")
    def _dump_secret(self, value: SecretStr, info: SerializationInfo) -> str:
        return _show_secret(value, info)

    @field_validator("token_url")
    @classmethod
    def _no_placeholders(cls, value: str) -> str:
        if url_placeholders(value):
            raise ValueError("a token URL has no placeholders")
        return value


class ClientCredentialsAuth(_TokenAuth):
    """An access token of the service's own app from any issuer's token endpoint (RFC 6749
    §4.4), cached until shortly before it expires."""

    type: Literal["oauth_client_credentials"]


class TokenExchangeAuth(_TokenAuth):
    """On behalf of the caller: the run's caller token exchanged at the token endpoint
    (RFC 8693) for a token for `audience`, where the user stays `sub` and the app is in
    `act`; cached per caller token and audience until shortly before it expires."""

    type: Literal["oauth_token_exchange"]
    audience: str = Field(min_length=1, max_length=2000)


def _auth_shorthand(value: Any) -> Any:
    return {"type": "none"} if value is None or value == "none" else value


Auth = Annotated[
    NoAuth | BasicAuth | ClientCredentialsAuth | TokenExchangeAuth,
    Field(discriminator="type"),
    BeforeValidator(_auth_shorthand),
]


# --- steps ---------------------------------------------------------------------------------------


class MapStep(_Model):
    """Build a JSON document: each string of `output` is a JMESPath expression."""

    type: Literal["map"]
    name: StepName | None = None
    output: Annotated[Any, AfterValidator(_template)]


class InvokeStep(_Model):
    """Call an HTTP connection with the last step's output (or `body`) as JSON."""

    type: Literal["invoke"]
    name: StepName | None = None
    url: HttpUrl
    method: Method = "POST"
    headers: Headers = Field(default_factory=dict)
    body: Expression | None = None
    auth: Auth = NoAuth()
    timeout_seconds: float = Field(10.0, gt=0, le=120)


class RespondStep(_Model):
    """Answer the caller: `status`, `headers`, and the last output (or `body`) as JSON."""

    type: Literal["respond"]
    name: StepName | None = None
    status: int = Field(200, ge=200, le=599)
    headers: Headers = Field(default_factory=dict)
    body: Expression | None = None


Step = Annotated[MapStep | InvokeStep | RespondStep, Field(discriminator="type")]


class Trigger(_Model):
    """A REST trigger: the method and path template under the integration's endpoint."""

    method: Method
    path: str = Field(max_length=500)
    scope: Scope = SCOPE_RUN

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        try:
            parse_path(value)
        except TemplateError as exc:
            raise ValueError(str(exc)) from None
        return value


class IntegrationDocument(_Model):
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,49}$")
    version: str = Field(pattern=r"^\d{2}\.\d{2}\.\d{4}$")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    trigger: Trigger
    steps: list[Step] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _check_steps(self) -> IntegrationDocument:
        names: set[str] = set()
        params = set(parse_path(self.trigger.path).params)
        for index, step in enumerate(self.steps):
            if step.name is not None:
                if step.name in names:
                    raise ValueError(f"steps[{index}]: the step name {step.name!r} is used twice")
                names.add(step.name)
            if isinstance(step, RespondStep) and index != len(self.steps) - 1:
                raise ValueError(f"steps[{index}]: respond must be the last step")
            if isinstance(step, InvokeStep):
                unknown = url_placeholders(step.url) - params
                if unknown:
                    raise ValueError(
                        f"steps[{index}].url: {', '.join(sorted(unknown))} is not a path "
                        f"parameter of the trigger {self.trigger.path!r}"
                    )
        return self

    @property
    def ident(self) -> str:
        return f"{self.code}|{self.version}"

    def stored(self) -> dict[str, Any]:
        """The form kept in the database, secrets included."""
        return self.model_dump(mode="json", context={"reveal": True})

    def urls(self) -> list[tuple[str, str]]:
        """Each URL the integration calls, with its place: `invoke` URLs and token endpoints."""
        found: list[tuple[str, str]] = []
        for index, step in enumerate(self.steps):
            if isinstance(step, InvokeStep):
                found.append((f"steps[{index}].url", step.url))
                if isinstance(step.auth, _TokenAuth):
                    found.append((f"steps[{index}].auth.token_url", step.auth.token_url))
        return found

    def foreign_token_exchanges(self, token_endpoint: str | None) -> list[tuple[str, str]]:
        """The places of `oauth_token_exchange` auths whose `token_url` is not
        `token_endpoint` (compared as RFC 3986 §6.2.2-§6.2.3 normalise them): the caller's
        own token goes there, so only to the issuer that issued it (docs/security.md rule
        57). None: no endpoint is trusted, every one is foreign."""
        trusted = _normalized(token_endpoint) if token_endpoint else None
        return [
            (f"steps[{index}].auth.token_url", step.auth.token_url)
            for index, step in enumerate(self.steps)
            if isinstance(step, InvokeStep)
            and isinstance(step.auth, TokenExchangeAuth)
            and (trusted is None or _normalized(step.auth.token_url) != trusted)
        ]

    def public(self) -> dict[str, Any]:
        """The form shown to callers, secrets redacted."""
        return self.model_dump(mode="json")


def _normalized(url: str) -> str | None:
    try:
        return normalize_htu(url)
    except ValueError:
        return None


# --- parsing -------------------------------------------------------------------------------------


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise DocumentError("YAML aliases (*name) are not accepted in integration documents")
        return super().compose_node(parent, index)


def parse_document(raw: bytes, content_type: str | None) -> IntegrationDocument:
    """Parse and validate JSON or YAML; without a media type, JSON first, then YAML."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"a document has at most {MAX_DOCUMENT_BYTES} bytes")
    media = (content_type or "").split(";")[0].strip().lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DocumentError("the document is not UTF-8") from None
    if media in _JSON_TYPES or media.endswith("+json"):
        data = _json(text)
    elif media in _YAML_TYPES or media.endswith("+yaml"):
        data = _yaml(text)
    elif media in ("", "text/plain", "application/octet-stream"):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            data = _yaml(text)
    else:
        raise UnsupportedDocumentType(
            f"send the document as application/json or application/yaml, not {media}"
        )
    return load_document(data)


def load_document(data: Any) -> IntegrationDocument:
    """Validate already parsed data; raise `DocumentError` naming each problem."""
    if not isinstance(data, dict):
        raise DocumentError("a document is a JSON or YAML object")
    try:
        return IntegrationDocument.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": _place(err["loc"]), "problem": str(err["msg"]).removeprefix("Value error, ")}
            for err in exc.errors(include_url=False, include_input=False)
        ]
        summary = "; ".join(
            f"{e['field']}: {e['problem']}" if e["field"] else e["problem"] for e in errors[:5]
        )
        raise DocumentError(f"the document is not a valid integration: {summary}", errors) from None
    except RecursionError:
        raise DocumentError("the document is nested too deeply") from None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise DocumentError("the document is nested too deeply") from None
    except ValueError as exc:
        raise DocumentError(f"the document is not valid JSON: {exc}") from None


def _yaml(text: str) -> Any:
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
        json.dumps(data)  # dates, sets and other YAML-only values have no JSON form
    except DocumentError:
        raise
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise DocumentError(f"the document is not valid YAML{line}") from None
    except (TypeError, ValueError, RecursionError):
        raise DocumentError("the document has values that JSON cannot represent") from None
    return data


_UNION_TAGS = frozenset(
    (
        "map",
        "invoke",
        "respond",
        "none",
        "basic",
        "oauth_client_credentials",
        "oauth_token_exchange",
    )
)


def _place(loc: tuple[int | str, ...]) -> str:
    """`('steps', 1, 'invoke', 'url')` → `steps[1].url` (the union tag adds nothing)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _UNION_TAGS:
            continue
        else:
            out += f".{part}" if out else str(part)
    return out
