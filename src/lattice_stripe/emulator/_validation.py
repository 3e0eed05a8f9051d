"""Request validation as Stripe's API does it, independent of the client library's guard.

The emulator must reject what any client sends (the official SDK, curl, a
hand-written form), so it checks the decoded form body against a small
declarative schema transcribed from Stripe's OpenAPI description, and reports
errors the way Stripe does: HTTP 400, ``invalid_request_error``, a ``param``
in Stripe's bracket notation (``flow_data[subscription_cancel][subscription]``)
and Stripe's error ``code`` where it has one.
"""

import re
from collections.abc import Mapping
from typing import Any

import attrs

from lattice_stripe.core.params import AFTER_COMPLETION_TYPES, FLOW_TYPES, LOCALES

__all__ = [
    "CUSTOMER_CREATE",
    "EXPAND_ONLY",
    "SESSION_CREATE",
    "SUBSCRIPTION_CREATE",
    "ApiError",
    "Array",
    "Boolean",
    "Enum",
    "Hash",
    "Integer",
    "MapOf",
    "Schema",
    "String",
    "check",
    "missing",
    "no_such",
]

_DOCS = "https://stripe.com/docs/error-codes/"
_INTEGER = re.compile(r"-?[0-9]{1,18}")


class ApiError(Exception):
    """An error answer in Stripe's shape: ``{"error": {"type", "message", "param", "code"}}``."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.param = param
        self.code = code

    def to_json(self) -> dict[str, Any]:
        """The response body."""
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.param is not None:
            error["param"] = self.param
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = _DOCS + self.code.replace("_", "-")
        return {"error": error}


def missing(param: str) -> ApiError:
    """Stripe's error for a required parameter that was not sent."""
    return ApiError(f"Missing required param: {param}.", param=param, code="parameter_missing")


def no_such(what: str, value: str, param: str, *, status: int = 400) -> ApiError:
    """Stripe's error for an ID that names nothing (404 when it is the URL's object)."""
    return ApiError(
        f"No such {what}: '{value}'", status=status, param=param, code="resource_missing"
    )


@attrs.frozen
class String:
    """A non-empty string of at most ``max_length`` characters (``None``: the spec sets none).

    ``clearable``: the empty value ``""`` is accepted and reads as ``None`` (unset).
    """

    max_length: int | None = 5000
    clearable: bool = False


@attrs.frozen
class Boolean:
    """``true`` or ``false``."""


@attrs.frozen
class Integer:
    """A decimal integer, at least ``minimum`` and at most ``maximum``."""

    minimum: int | None = None
    maximum: int | None = None


@attrs.frozen
class Enum:
    """One of ``values``."""

    values: tuple[str, ...]


@attrs.frozen
class Array:
    """A list (``a[0]=...&a[1]=...``) of ``item``; ``clearable``: ``a=`` is the empty list."""

    item: "Schema"
    clearable: bool = False


@attrs.frozen
class Hash:
    """A hash with known ``fields``; the ``required`` ones must be present."""

    fields: Mapping[str, "Schema"]
    required: tuple[str, ...] = ()


@attrs.frozen
class MapOf:
    """A hash with free keys (``metadata``), each value ``value``."""

    value: "Schema"


Schema = String | Boolean | Integer | Enum | Array | Hash | MapOf


def _child(param: str, key: str | int) -> str:
    return f"{param}[{key}]" if param else str(key)


def check(schema: Schema, value: Any, param: str = "") -> Any:
    """Return ``value`` checked against ``schema`` (integers converted), or raise ApiError."""
    if isinstance(schema, Hash | MapOf):
        if not isinstance(value, dict):
            raise ApiError(
                f"Invalid hash: {param} must be a hash (use {param}[key]=value).", param=param
            )
        if isinstance(schema, MapOf):
            return {
                key: check(schema.value, item, _child(param, key)) for key, item in value.items()
            }
        for key in value:
            if key not in schema.fields:
                raise ApiError(
                    f"Received unknown parameter: {_child(param, key)}",
                    param=_child(param, key),
                    code="parameter_unknown",
                )
        for key in schema.required:
            if key not in value:
                raise missing(_child(param, key))
        return {
            key: check(schema.fields[key], item, _child(param, key)) for key, item in value.items()
        }
    if isinstance(schema, Array):
        if value == "" and schema.clearable:
            return []
        if not isinstance(value, list):
            raise ApiError(
                f"Invalid array: {param} must be a list (use {param}[0]=value).", param=param
            )
        return [check(schema.item, item, _child(param, index)) for index, item in enumerate(value)]
    if not isinstance(value, str):
        raise ApiError(
            f"Invalid {param}: expected a single value, got a hash or list.", param=param
        )
    if value == "" and isinstance(schema, String) and schema.clearable:
        return None
    if value == "":
        raise ApiError(
            f"You passed an empty string for '{param}'. We assume empty values are an attempt "
            f"to unset a parameter; however '{param}' cannot be unset. You should remove "
            f"'{param}' from your request or supply a non-empty value.",
            param=param,
            code="parameter_invalid_empty",
        )
    if isinstance(schema, String):
        if schema.max_length is not None and len(value) > schema.max_length:
            raise ApiError(
                f"Invalid {param}: must be at most {schema.max_length} characters.",
                param=param,
                code="parameter_invalid_string",
            )
        return value
    if isinstance(schema, Boolean):
        if value not in ("true", "false"):
            raise ApiError(f"Invalid boolean: {value[:20]}", param=param)
        return value == "true"
    if isinstance(schema, Enum):
        if value not in schema.values:
            raise ApiError(
                f"Invalid {param}: must be one of {', '.join(schema.values)}", param=param
            )
        return value
    if _INTEGER.fullmatch(value) is None:
        raise ApiError(
            f"Invalid integer for {param}.", param=param, code="parameter_invalid_integer"
        )
    number = int(value)
    if schema.minimum is not None and number < schema.minimum:
        raise ApiError(
            f"Invalid {param}: must be greater than or equal to {schema.minimum}.", param=param
        )
    if schema.maximum is not None and number > schema.maximum:
        raise ApiError(
            f"Invalid {param}: must be less than or equal to {schema.maximum}.", param=param
        )
    return number


_SUBSCRIPTION = Hash({"subscription": String()}, required=("subscription",))

SESSION_CREATE = Hash(
    {
        "after_expiration": Hash(
            {
                "customer_login": Hash({"expires_at": Integer(minimum=1)}),
                "type": Enum(("customer_login",)),
            },
            required=("type",),
        ),
        "configuration": String(),
        "customer": String(),
        "customer_account": String(),
        "expand": Array(String()),
        "flow_data": Hash(
            {
                "after_completion": Hash(
                    {
                        "hosted_confirmation": Hash({"custom_message": String(max_length=500)}),
                        "redirect": Hash(
                            {"return_url": String(max_length=None)}, required=("return_url",)
                        ),
                        "type": Enum(AFTER_COMPLETION_TYPES),
                    },
                    required=("type",),
                ),
                "subscription_cancel": Hash(
                    {
                        "retention": Hash(
                            {
                                "coupon_offer": Hash({"coupon": String()}, required=("coupon",)),
                                "type": Enum(("coupon_offer",)),
                            },
                            required=("coupon_offer", "type"),
                        ),
                        "subscription": String(),
                    },
                    required=("subscription",),
                ),
                "subscription_pause": _SUBSCRIPTION,
                "subscription_update": _SUBSCRIPTION,
                "subscription_update_confirm": Hash(
                    {
                        "discounts": Array(Hash({"coupon": String(), "promotion_code": String()})),
                        "items": Array(
                            Hash(
                                {"id": String(), "price": String(), "quantity": Integer(minimum=0)},
                                required=("id",),
                            )
                        ),
                        "subscription": String(),
                    },
                    required=("items", "subscription"),
                ),
                "type": Enum(FLOW_TYPES),
            },
            required=("type",),
        ),
        "locale": Enum(tuple(sorted(LOCALES))),
        "on_behalf_of": String(max_length=None),
        "return_url": String(max_length=None),
    }
)

_ADDRESS = Hash(
    {key: String() for key in ("city", "country", "line1", "line2", "postal_code", "state")}
)

CUSTOMER_CREATE = Hash(
    {
        "address": _ADDRESS,
        "business_name": String(max_length=150),
        "description": String(),
        "email": String(max_length=512),
        "expand": Array(String()),
        "individual_name": String(max_length=150),
        "metadata": MapOf(String(max_length=500)),
        "name": String(max_length=256),
        "phone": String(max_length=20),
        "preferred_locales": Array(String()),
        "test_clock": String(),
    }
)

SUBSCRIPTION_CREATE = Hash(
    {
        "customer": String(),
        "expand": Array(String()),
        "items": Array(
            Hash({"price": String(), "quantity": Integer(minimum=1)}, required=("price",))
        ),
        "metadata": MapOf(String(max_length=500)),
    },
    required=("customer", "items"),
)

EXPAND_ONLY = Hash({"expand": Array(String())})
