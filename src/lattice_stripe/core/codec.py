"""Stripe's wire formats: form encoding out, JSON objects in.

Out: :func:`encode_session_params` writes a checked
:class:`~lattice_stripe.core.params.SessionCreateParams` as Stripe's form body
(``flow_data[type]=...``, ``items[0][id]=...``) in a fixed order, with
pre-encoded keys; :func:`encode_form` does the same for any nested mapping and
:func:`decode_form` reads such a body back into nested dicts and lists.

In: :func:`decode_session` turns a JSON body into a
:class:`~lattice_stripe.core.session.Session` through one module-level cattrs
converter with generated hooks. Unknown keys are kept in ``extra``; a wrong
type or a missing required field is a
:class:`~lattice_stripe.core.errors.ResponseDecodeError`, never a ``KeyError``.
"""

import json
import re
import typing
from collections.abc import Callable, Mapping
from types import MappingProxyType, NoneType, UnionType
from typing import TYPE_CHECKING, Any, TypeVar, Union, cast, get_args, get_origin
from urllib.parse import parse_qsl, quote

import attrs

from lattice_stripe.core.errors import EventDecodeError, ResponseDecodeError
from lattice_stripe.core.params import (
    AfterCompletion,
    FlowData,
    SessionCreateParams,
    SubscriptionCancelFlow,
    SubscriptionPauseFlow,
    SubscriptionUpdateConfirmFlow,
    SubscriptionUpdateFlow,
)
from lattice_stripe.core.session import (
    Configuration,
    ConfigurationAdjustableQuantity,
    ConfigurationBusinessProfile,
    ConfigurationCancellationReason,
    ConfigurationCustomerUpdate,
    ConfigurationFeatures,
    ConfigurationInvoiceHistory,
    ConfigurationLoginPage,
    ConfigurationPauseDuration,
    ConfigurationPauseIntervalOption,
    ConfigurationPaymentMethodUpdate,
    ConfigurationProduct,
    ConfigurationScheduleAtPeriodEnd,
    ConfigurationScheduleCondition,
    ConfigurationSubscriptionCancel,
    ConfigurationSubscriptionPause,
    ConfigurationSubscriptionUpdate,
    Flow,
    FlowAfterCompletion,
    FlowCouponOffer,
    FlowCustomerUpdate,
    FlowHostedConfirmation,
    FlowRedirect,
    FlowRetention,
    FlowSubscriptionCancel,
    FlowSubscriptionPause,
    FlowSubscriptionUpdate,
    FlowSubscriptionUpdateConfirm,
    FlowUpdateConfirmDiscount,
    FlowUpdateConfirmItem,
    Page,
    Session,
    SessionAfterExpiration,
)

if TYPE_CHECKING:
    import cattrs

    from lattice_stripe.core.operations import Decoder

__all__ = [
    "decode_configuration",
    "decode_configuration_page",
    "decode_form",
    "decode_session",
    "object_decoder",
    "page_decoder",
    "read_object",
    "encode_form",
    "encode_session_params",
    "params_to_dict",
]

T = TypeVar("T")

# -- form encoding -------------------------------------------------------------------

_plain = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch
# Percent-encoding of every ASCII character outside the unreserved set, for
# str.translate: the same output as quote(value, safe="") for ASCII text, in
# one C-level pass.
_ASCII_ESCAPES = {
    code: f"%{code:02X}"
    for code in range(128)
    if not (chr(code).isascii() and (chr(code).isalnum() or chr(code) in "_.~-"))
}


def _q(value: str) -> str:
    if _plain(value):
        return value
    if value.isascii():
        return value.translate(_ASCII_ESCAPES)
    return quote(value, safe="")


def _key(*parts: str) -> str:
    head, *rest = parts
    return head + "".join(f"%5B{part}%5D" for part in rest) + "="


# The plain top-level fields in definition order, with their encoded keys: read
# from SessionCreateParams, so a new plain field is encoded without an edit here.
_SCALAR_FIELDS = tuple(
    (field.name, _key(field.name))
    for field in attrs.fields(SessionCreateParams)
    if field.name not in ("flow_data", "after_expiration", "expand")
)
_FLOW_TYPE = _key("flow_data", "type")
_AC_TYPE = _key("flow_data", "after_completion", "type")
_AC_RETURN_URL = _key("flow_data", "after_completion", "redirect", "return_url")
_AC_MESSAGE = _key("flow_data", "after_completion", "hosted_confirmation", "custom_message")
_SUBSCRIPTION = {
    flow: _key("flow_data", flow, "subscription")
    for flow in (
        "subscription_cancel",
        "subscription_update",
        "subscription_update_confirm",
        "subscription_pause",
    )
}
_RETENTION_TYPE = _key("flow_data", "subscription_cancel", "retention", "type")
_RETENTION_COUPON = _key("flow_data", "subscription_cancel", "retention", "coupon_offer", "coupon")
_CONFIRM = "flow_data%5Bsubscription_update_confirm%5D%5B"
_EXPIRATION_TYPE = _key("after_expiration", "type")
_EXPIRATION_AT = _key("after_expiration", "customer_login", "expires_at")


def _encode_after_completion(completion: AfterCompletion, add: Callable[[str], None]) -> None:
    add(_AC_TYPE + completion.type)
    if completion.return_url is not None:
        add(_AC_RETURN_URL + _q(completion.return_url))
    if completion.custom_message is not None:
        add(_AC_MESSAGE + _q(completion.custom_message))


def _encode_flow(flow: FlowData, add: Callable[[str], None]) -> None:
    add(_FLOW_TYPE + flow.type)
    if flow.after_completion is not None:
        _encode_after_completion(flow.after_completion, add)
    if isinstance(flow, (SubscriptionCancelFlow, SubscriptionUpdateFlow, SubscriptionPauseFlow)):
        add(_SUBSCRIPTION[flow.type] + _q(flow.subscription))
        if isinstance(flow, SubscriptionCancelFlow) and flow.retention is not None:
            add(_RETENTION_TYPE + flow.retention.type)
            add(_RETENTION_COUPON + _q(flow.retention.coupon))
    elif isinstance(flow, SubscriptionUpdateConfirmFlow):
        add(_SUBSCRIPTION[flow.type] + _q(flow.subscription))
        for index, item in enumerate(flow.items):
            prefix = f"{_CONFIRM}items%5D%5B{index}%5D%5B"
            add(f"{prefix}id%5D={_q(item.id)}")
            if item.price is not None:
                add(f"{prefix}price%5D={_q(item.price)}")
            if item.quantity is not None:
                add(f"{prefix}quantity%5D={item.quantity}")
        for index, discount in enumerate(flow.discounts or ()):
            prefix = f"{_CONFIRM}discounts%5D%5B{index}%5D%5B"
            if discount.coupon is not None:
                add(f"{prefix}coupon%5D={_q(discount.coupon)}")
            if discount.promotion_code is not None:
                add(f"{prefix}promotion_code%5D={_q(discount.promotion_code)}")


def encode_session_params(params: SessionCreateParams) -> bytes:
    """Encode checked session parameters as Stripe's form body, in a fixed order."""
    parts: list[str] = []
    add = parts.append
    for name, key in _SCALAR_FIELDS:
        value = getattr(params, name)
        if value is not None:
            add(key + _q(value))
    if params.flow_data is not None:
        _encode_flow(params.flow_data, add)
    expiration = params.after_expiration
    if expiration is not None:
        add(_EXPIRATION_TYPE + expiration.type)
        if expiration.expires_at is not None:
            add(f"{_EXPIRATION_AT}{expiration.expires_at}")
    for index, field in enumerate(params.expand):
        add(f"expand%5B{index}%5D={_q(field)}")
    return "&".join(parts).encode("ascii")


def params_to_dict(params: SessionCreateParams) -> dict[str, Any]:
    """Return checked session parameters as the nested mapping Stripe's docs show."""
    result: dict[str, Any] = {}
    for name, _ in _SCALAR_FIELDS:
        value = getattr(params, name)
        if value is not None:
            result[name] = value
    flow = params.flow_data
    if flow is not None:
        flow_dict: dict[str, Any] = {"type": flow.type}
        completion = flow.after_completion
        if completion is not None:
            completion_dict: dict[str, Any] = {"type": completion.type}
            if completion.return_url is not None:
                completion_dict["redirect"] = {"return_url": completion.return_url}
            if completion.custom_message is not None:
                completion_dict["hosted_confirmation"] = {
                    "custom_message": completion.custom_message
                }
            flow_dict["after_completion"] = completion_dict
        if isinstance(
            flow, (SubscriptionCancelFlow, SubscriptionUpdateFlow, SubscriptionPauseFlow)
        ):
            sub: dict[str, Any] = {"subscription": flow.subscription}
            if isinstance(flow, SubscriptionCancelFlow) and flow.retention is not None:
                sub["retention"] = {
                    "type": flow.retention.type,
                    "coupon_offer": {"coupon": flow.retention.coupon},
                }
            flow_dict[flow.type] = sub
        elif isinstance(flow, SubscriptionUpdateConfirmFlow):
            confirm: dict[str, Any] = {
                "subscription": flow.subscription,
                "items": [_drop_none(attrs.asdict(item)) for item in flow.items],
            }
            if flow.discounts:
                confirm["discounts"] = [_drop_none(attrs.asdict(d)) for d in flow.discounts]
            flow_dict[flow.type] = confirm
        result["flow_data"] = flow_dict
    if params.after_expiration is not None:
        expiration: dict[str, Any] = {"type": params.after_expiration.type}
        if params.after_expiration.expires_at is not None:
            expiration["customer_login"] = {"expires_at": params.after_expiration.expires_at}
        result["after_expiration"] = expiration
    if params.expand:
        result["expand"] = list(params.expand)
    return result


def _drop_none(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


def _flatten(prefix: str, value: object, out: list[tuple[str, str]]) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}[{key}]" if prefix else str(key), inner, out)
    elif isinstance(value, (list, tuple)):
        for index, inner in enumerate(value):
            _flatten(f"{prefix}[{index}]", inner, out)
    elif isinstance(value, bool):
        out.append((prefix, "true" if value else "false"))
    else:
        out.append((prefix, str(value)))


def encode_form(data: Mapping[str, object]) -> bytes:
    """Encode any nested mapping the Stripe way: ``a[b]``, ``a[0][k]``, true/false, None dropped."""
    pairs: list[tuple[str, str]] = []
    _flatten("", data, pairs)
    return "&".join(
        f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in pairs
    ).encode("ascii")


_KEY_PART = re.compile(r"\[([^\[\]]*)\]")


def decode_form(body: bytes | str) -> dict[str, Any]:
    """Read a Stripe form body back into nested dicts and lists (values stay strings).

    ``a[0]``, ``a[1]`` (or ``a[]``, ``a[]``) become a list; any other bracketed key a dict. Raises
    ``ValueError`` for a body whose keys contradict each other.
    """
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True, strict_parsing=False):
        head, _, rest = key.partition("[")
        parts = [head, *_KEY_PART.findall("[" + rest)] if rest else [head]
        node: Any = root
        for part, following in zip(parts, [*parts[1:], None], strict=True):
            if following is None:
                _set(node, part, value, key)
            else:
                child = _get(node, part)
                if child is None:
                    child = [] if following.isdigit() or following == "" else {}
                    _set(node, part, child, key)
                node = child
    return root


def _get(node: Any, part: str) -> Any:
    if isinstance(node, list):
        index = int(part)
        return node[index] if index < len(node) else None
    return node.get(part)


def _set(node: Any, part: str, value: Any, key: str) -> None:
    if isinstance(node, list) and part == "":
        node.append(value)
        return
    if isinstance(node, list):
        if not part.isdigit() or int(part) != len(node):
            if part.isdigit() and int(part) < len(node):
                node[int(part)] = value
                return
            raise ValueError(f"form key {key!r}: list indices must count up from 0")
        node.append(value)
    elif isinstance(node, dict):
        node[part] = value
    else:
        raise ValueError(f"form key {key!r} nests inside a plain value")


# -- JSON decoding -------------------------------------------------------------------


def _strict_str(value: object, _: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _optional_str(value: object, _: object) -> str | None:
    if value is None or value.__class__ is str:
        return value
    raise TypeError(f"expected a string or null, got {type(value).__name__}")


def _strict_int(value: object, _: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _strict_bool(value: object, _: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {type(value).__name__}")
    return value


def _json_object(value: object, _: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


_RESPONSE_TYPES: tuple[type, ...] = (
    FlowHostedConfirmation,
    FlowRedirect,
    FlowAfterCompletion,
    FlowCouponOffer,
    FlowRetention,
    FlowSubscriptionCancel,
    FlowSubscriptionUpdate,
    FlowUpdateConfirmItem,
    FlowUpdateConfirmDiscount,
    FlowSubscriptionUpdateConfirm,
    FlowSubscriptionPause,
    FlowCustomerUpdate,
    Flow,
    ConfigurationBusinessProfile,
    ConfigurationCustomerUpdate,
    ConfigurationInvoiceHistory,
    ConfigurationPaymentMethodUpdate,
    ConfigurationCancellationReason,
    ConfigurationSubscriptionCancel,
    ConfigurationAdjustableQuantity,
    ConfigurationProduct,
    ConfigurationScheduleCondition,
    ConfigurationScheduleAtPeriodEnd,
    ConfigurationSubscriptionUpdate,
    ConfigurationPauseIntervalOption,
    ConfigurationPauseDuration,
    ConfigurationSubscriptionPause,
    ConfigurationFeatures,
    ConfigurationLoginPage,
    Configuration,
    SessionAfterExpiration,
    Session,
)


def _is_optional(type_: Any) -> bool:
    args = get_args(type_)
    return get_origin(type_) in (Union, UnionType) and len(args) == 2 and NoneType in args


def _is_homogeneous_tuple(type_: Any) -> bool:
    args = get_args(type_)
    return get_origin(type_) is tuple and len(args) == 2 and args[1] is Ellipsis


def _make_converter(detailed: bool) -> "cattrs.Converter":
    import cattrs

    # Built on first use, like the converter: importing the core builds no billing value.
    from lattice_stripe.core.billing import RESPONSE_TYPES as _BILLING_TYPES
    from lattice_stripe.core.billing import ExpandableId, Price

    converter = cattrs.Converter(detailed_validation=detailed, forbid_extra_keys=False)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(bool, _strict_bool)

    # Specialised hooks for "X | None" and "tuple[X, ...]", resolved once when a
    # class hook is generated instead of dispatched on every value.
    def optional(type_: Any) -> Callable[[Any, Any], Any]:
        inner = next(arg for arg in get_args(type_) if arg is not NoneType)
        if inner is str:
            return _optional_str
        inner_hook = converter.get_structure_hook(inner)

        def structure_optional(value: Any, _: Any) -> Any:
            return None if value is None else inner_hook(value, inner)

        return structure_optional

    def homogeneous_tuple(type_: Any) -> Callable[[Any, Any], Any]:
        inner = get_args(type_)[0]
        inner_hook = converter.get_structure_hook(inner)

        def structure_tuple(value: Any, _: Any) -> tuple[Any, ...]:
            if not isinstance(value, list):
                raise TypeError(f"expected an array, got {type(value).__name__}")
            if not detailed:
                return tuple([inner_hook(item, inner) for item in value])
            # Each failure noted with its index, so that its path reads items.data[0].quantity.
            from cattrs.errors import IterableValidationError, IterableValidationNote

            errors: list[Exception] = []
            for index, item in enumerate(value):
                try:
                    inner_hook(item, inner)
                except Exception as error:
                    note = IterableValidationNote(
                        f"Structuring {type_} @ index {index}", index, inner
                    )
                    error.__notes__ = [*getattr(error, "__notes__", []), note]  # type: ignore[attr-defined]
                    errors.append(error)
            if errors:
                raise IterableValidationError(f"While structuring {type_!r}", errors, type_)
            return tuple([inner_hook(item, inner) for item in value])

        return structure_tuple

    converter.register_structure_hook_factory(_is_homogeneous_tuple, homogeneous_tuple)
    if not detailed:
        converter.register_structure_hook_factory(_is_optional, optional)
    converter.register_structure_hook_func(lambda t: t == dict[str, Any], _json_object)

    def configuration(value: object, _: object) -> str | Configuration:
        if isinstance(value, str):
            return value
        return converter.structure(value, Configuration)

    def application(value: object, _: object) -> str | dict[str, Any] | None:
        if value is None or isinstance(value, str):
            return value
        return _json_object(value, None)

    def expandable_id(value: object, _: object) -> str:
        # An expandable reference: the ID, or the expanded object, read as its ID.
        if isinstance(value, dict):
            value = value.get("id")
        if value.__class__ is not str:
            raise TypeError("expected an ID or an expanded object with a string 'id'")
        return value

    converter.register_structure_hook(ExpandableId, expandable_id)
    converter.register_structure_hook_func(lambda t: t == str | Configuration, configuration)
    converter.register_structure_hook_func(lambda t: t == str | dict[str, Any] | None, application)
    price: list[Callable[[Any, Any], Price]] = []

    def price_or_id(value: Any, _: Any) -> Price:
        # Older API versions (and some events) send a subscription item's price as its ID.
        return Price(id=value) if value.__class__ is str else price[0](value, Price)

    # Registered before the classes that hold a price, whose hooks are generated below.
    converter.register_structure_hook(Price, price_or_id)
    for cls in _RESPONSE_TYPES + _BILLING_TYPES:
        hook: Callable[[Any, Any], Any] = _keeping_extra(converter, cls)
        if cls is Price:
            price.append(hook)
        else:
            converter.register_structure_hook(cls, hook)
    return converter


def _keeping_extra(converter: "cattrs.Converter", cls: type[T]) -> Callable[[Any, Any], T]:
    from cattrs.gen import make_dict_structure_fn, override

    known = frozenset(field.name for field in attrs.fields(cast(Any, cls))) - {"extra"}
    base = make_dict_structure_fn(cls, converter, extra=override(omit=True))

    def structure_keeping_extra(value: Any, _: Any) -> T:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        result = base(value, cls)
        if not known.issuperset(value):
            extra = {key: item for key, item in value.items() if key not in known}
            object.__setattr__(result, "extra", MappingProxyType(extra))
        return result

    return structure_keeping_extra


# Built on first use: generating the hooks (and importing cattrs) is start-up
# cost that an application importing the library need not pay until it decodes.
_converters: "dict[bool, cattrs.Converter]" = {}


def _converter(detailed: bool = False) -> "cattrs.Converter":
    converter = _converters.get(detailed)
    if converter is None:
        converter = _converters[detailed] = _make_converter(detailed)
    return converter


# -- the direct decoder: the common, well-formed document without cattrs' dispatch ----------

_DECLINED: Any = object()
"""What a direct decoder returns for anything it does not take; cattrs then decides."""


def _direct_decoder(cls: type[T]) -> Callable[[Any], T]:
    """A decoder of ``cls`` read from its attrs fields, for documents of the usual shape.

    Plain fields (``str``, ``int``, ``bool``, a JSON object, each optionally
    ``| None``) are checked inline by exact type; nested response classes,
    lists and unions by small decoders resolved once. Anything unexpected (a
    wrong type, a missing required field) returns ``_DECLINED`` instead of
    raising, and the caller hands the document to cattrs, which accepts or
    explains: the direct decoder only ever takes what cattrs takes, and
    builds the same value.
    """
    hints = typing.get_type_hints(cls)
    steps: list[tuple[str, bool, bool, type | None, Callable[[Any], Any] | None, Any]] = []
    for field in attrs.fields(cast(Any, cls)):
        if field.name == "extra":
            continue
        type_ = hints[field.name]
        members = get_args(type_) if get_origin(type_) in (Union, UnionType) else (type_,)
        nullable = NoneType in members
        members = tuple(member for member in members if member is not NoneType)
        exact: type | None = None
        nested: Callable[[Any], Any] | None = None
        if len(members) > 1:
            nested = _direct_union(members)
        elif members[0] in _PLAIN:
            exact = _PLAIN[members[0]]
        else:
            nested = _direct_value(members[0])
        required = field.default is attrs.NOTHING
        steps.append((field.name, required, nullable, exact, nested, field.default))
    known = frozenset(name for name, *_ in steps)

    # The steps become one straight-line function, compiled once per class (as attrs
    # and cattrs build theirs): a loop over the steps costs about a fifth more.
    namespace: dict[str, Any] = {"cls": cls, "DECLINED": _DECLINED, "known": known}
    namespace.update(MappingProxyType=MappingProxyType, setattr_=object.__setattr__)
    lines = ["def decode(value):", "    if value.__class__ is not dict:", "        return DECLINED"]
    lines.append("    get = value.get")
    for index, (name, required, nullable, exact, nested, default) in enumerate(steps):
        item = f"v{index}"
        namespace[f"exact{index}"], namespace[f"nested{index}"] = exact, nested
        namespace[f"default{index}"] = default
        indent = "    "
        if required:
            lines += [f"    {item} = get({name!r}, DECLINED)", f"    if {item} is DECLINED:"]
            lines.append("        return DECLINED")
        elif default is None and nullable:
            lines.append(f"    {item} = get({name!r})")
        else:
            lines += [f"    {item} = get({name!r}, default{index})"]
            lines.append(f"    if {item} is not default{index}:")
            indent = "        "
        if nullable:
            lines.append(f"{indent}if {item} is not None:")
            indent += "    "
        if exact is not None:
            lines.append(f"{indent}if {item}.__class__ is not exact{index}:")
        else:
            lines += [f"{indent}{item} = nested{index}({item})", f"{indent}if {item} is DECLINED:"]
        lines.append(f"{indent}    return DECLINED")
    arguments = ", ".join(f"{name}=v{index}" for index, (name, *_) in enumerate(steps))
    lines += [
        f"    result = cls({arguments})",
        "    if not known.issuperset(value):",
        "        extra = {key: item for key, item in value.items() if key not in known}",
        "        setattr_(result, 'extra', MappingProxyType(extra))",
        "    return result",
    ]
    exec(compile("\n".join(lines), f"<direct decoder of {cls.__name__}>", "exec"), namespace)
    decode: Callable[[Any], T] = namespace["decode"]
    return decode


# What a JSON value of each plain annotation is, exactly (json.loads makes exact builtins).
_PLAIN: dict[Any, type] = {str: str, int: int, bool: bool, dict[str, Any]: dict}


_DIRECT: dict[type, Callable[[Any], Any]] = {}


def _direct(cls: type[T]) -> Callable[[Any], T]:
    """The direct decoder of ``cls``, built on first use (start-up stays light)."""
    found = _DIRECT.get(cls)
    if found is None:
        found = _DIRECT[cls] = _direct_decoder(cls)
    return found


def _direct_value(type_: Any) -> Callable[[Any], Any]:
    """The direct decoder of a response class or a ``tuple[X, ...]`` of strings or classes."""
    if type_ in _RESPONSE_TYPES:
        return _direct(type_)
    if not _is_homogeneous_tuple(type_):  # pragma: no cover - a coding error
        raise TypeError(f"no direct decoder for {type_!r}")
    inner = get_args(type_)[0]
    if inner is str:

        def strings(value: Any) -> Any:
            if value.__class__ is not list or any(item.__class__ is not str for item in value):
                return _DECLINED
            return tuple(value)

        return strings
    decode_inner = _direct(inner)

    def entries(value: Any) -> Any:
        if value.__class__ is not list:
            return _DECLINED
        result = tuple([decode_inner(item) for item in value])
        return _DECLINED if any(item is _DECLINED for item in result) else result

    return entries


def _direct_union(members: tuple[Any, ...]) -> Callable[[Any], Any]:
    """``str | Configuration`` (an ID or the expanded object), ``str | dict[str, Any]``."""
    plain = frozenset(_PLAIN[member] for member in members if member in _PLAIN)
    objects = [member for member in members if member not in _PLAIN]

    def union(value: Any) -> Any:
        if value.__class__ is str and str in plain:
            return value
        if objects:
            # Resolved when first met: most sessions name their configuration by ID,
            # so a first create need not build the configuration's decoders.
            return _direct_value(objects[0])(value)
        return value if value.__class__ in plain else _DECLINED

    return union


def _decode_direct_or_cattrs(document: dict[str, Any], cls: type[T]) -> "T | str":
    """``document`` as ``cls``: directly when it has the usual shape, else through cattrs."""
    result: T = _direct(cls)(document)
    return _structured(document, cls) if result is _DECLINED else result


_decode_json = json.JSONDecoder().decode


def _describe(error: Exception) -> str:
    import cattrs

    messages = (
        cattrs.transform_error(error, path="$")
        if isinstance(error, cattrs.BaseValidationError)
        else [str(error)]
    )
    shown = "; ".join(messages[:3])
    return shown + (f" (and {len(messages) - 3} more)" if len(messages) > 3 else "")


def decode_session(
    body: bytes,
    *,
    status: int = 200,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> Session:
    """Decode a ``billing_portal.session`` JSON body, or raise ResponseDecodeError."""
    outcome = _session_or_reason(body)
    if isinstance(outcome, Session):
        return outcome
    error = ResponseDecodeError(
        f"response is not a valid billing_portal.session: {outcome}",
        status=status,
        request_id=request_id,
        body=body,
        idempotency_key=idempotency_key,
    )
    # The body holds the portal URL; dropping it keeps the URL out of any
    # traceback rendered with its locals.
    del body
    raise error


def _session_or_reason(body: bytes) -> "Session | str":
    """The decoded session, or why it could not be decoded (no exception escapes)."""
    try:
        # Stripe's bodies are UTF-8 (RFC 8259): decoding them here skips
        # json.loads' sniffing for UTF-16 and UTF-32.
        document = _decode_json(body.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return "the body is not JSON"
    if not isinstance(document, dict):
        return f"expected a JSON object, got {type(document).__name__}"
    if document.get("object") != "billing_portal.session":
        return "its 'object' is not 'billing_portal.session'"
    return _decode_direct_or_cattrs(document, Session)


def _decode_failure(
    what: str,
    reason: str,
    status: int,
    request_id: str | None,
    idempotency_key: str | None,
    body: bytes,
) -> ResponseDecodeError:
    return ResponseDecodeError(
        f"response is not a valid {what}: {reason}",
        status=status,
        request_id=request_id,
        body=body,
        idempotency_key=idempotency_key,
    )


def _document(body: bytes, object_name: str) -> "dict[str, Any] | str":
    try:
        document = _decode_json(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return "the body is not JSON"
    if not isinstance(document, dict):
        return f"expected a JSON object, got {type(document).__name__}"
    if document.get("object") != object_name:
        return f"its 'object' is not '{object_name}'"
    return document


def _structured(document: Any, cls: type[T]) -> "T | str":
    try:
        return _converter().structure(document, cls)
    except Exception:  # redone below with paths, for a readable message
        pass
    try:
        _converter(detailed=True).structure(document, cls)
    except Exception as error:  # any decoder failure becomes ours
        return _describe(error)
    return "the decoder rejected it"  # pragma: no cover - both converters agree


_CONFIGURATION_OBJECT = "billing_portal.configuration"


def decode_configuration(
    body: bytes,
    *,
    status: int = 200,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> Configuration:
    """Decode a ``billing_portal.configuration`` JSON body, or raise ResponseDecodeError."""
    document = _document(body, _CONFIGURATION_OBJECT)
    outcome = (
        document if isinstance(document, str) else _decode_direct_or_cattrs(document, Configuration)
    )
    if isinstance(outcome, Configuration):
        return outcome
    raise _decode_failure(_CONFIGURATION_OBJECT, outcome, status, request_id, idempotency_key, body)


def decode_configuration_page(
    body: bytes,
    *,
    status: int = 200,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> Page[Configuration]:
    """Decode a list of configurations (one page), or raise ResponseDecodeError."""
    what = "list of billing_portal.configuration"
    document = _document(body, "list")
    if isinstance(document, str):
        raise _decode_failure(what, document, status, request_id, idempotency_key, body)
    data, has_more, url = document.get("data"), document.get("has_more"), document.get("url")
    reason = None
    if not isinstance(data, list):
        reason = "'data' is not an array"
    elif not isinstance(has_more, bool):
        reason = "'has_more' is not a boolean"
    elif not isinstance(url, str):
        reason = "'url' is not a string"
    if reason is not None:
        raise _decode_failure(what, reason, status, request_id, idempotency_key, body)
    items = []
    for index, item in enumerate(data):  # type: ignore[arg-type]
        if not isinstance(item, dict) or item.get("object") != _CONFIGURATION_OBJECT:
            reason = f"data[{index}] is not a {_CONFIGURATION_OBJECT}"
            raise _decode_failure(what, reason, status, request_id, idempotency_key, body)
        outcome = _decode_direct_or_cattrs(item, Configuration)
        if isinstance(outcome, str):
            reason = f"data[{index}]: {outcome}"
            raise _decode_failure(what, reason, status, request_id, idempotency_key, body)
        items.append(outcome)
    known = {"object", "data", "has_more", "url"}
    extra = {key: value for key, value in document.items() if key not in known}
    return Page(
        data=tuple(items),
        has_more=has_more,  # type: ignore[arg-type]
        url=url,  # type: ignore[arg-type]
        extra=MappingProxyType(extra),
    )


def object_decoder(cls: type[T], object_name: str) -> "Decoder[T]":
    """The decoder of one ``object_name`` JSON body into ``cls`` (ResponseDecodeError if not)."""

    def decode(
        body: bytes,
        *,
        status: int = 200,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> T:
        document = _document(body, object_name)
        outcome = document if isinstance(document, str) else _structured(document, cls)
        if isinstance(outcome, cls):
            return outcome
        raise _decode_failure(
            object_name, cast(str, outcome), status, request_id, idempotency_key, body
        )

    return decode


def page_decoder(cls: type[T], object_name: str) -> "Decoder[Page[T]]":
    """The decoder of one page of a list of ``object_name`` objects into a :class:`Page`."""
    what = f"list of {object_name}"

    def decode(
        body: bytes,
        *,
        status: int = 200,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Page[T]:
        def fail(reason: str) -> ResponseDecodeError:
            return _decode_failure(what, reason, status, request_id, idempotency_key, body)

        document = _document(body, "list")
        if isinstance(document, str):
            raise fail(document)
        data, has_more, url = document.get("data"), document.get("has_more"), document.get("url")
        if not isinstance(data, list):
            raise fail("'data' is not an array")
        if not isinstance(has_more, bool):
            raise fail("'has_more' is not a boolean")
        if not isinstance(url, str):
            raise fail("'url' is not a string")
        items = []
        for index, item in enumerate(data):
            if not isinstance(item, dict) or item.get("object") != object_name:
                raise fail(f"data[{index}] is not a {object_name}")
            outcome = _structured(item, cls)
            if isinstance(outcome, str):
                raise fail(f"data[{index}]: {outcome}")
            items.append(outcome)
        known = {"object", "data", "has_more", "url"}
        extra = {key: value for key, value in document.items() if key not in known}
        return Page(data=tuple(items), has_more=has_more, url=url, extra=MappingProxyType(extra))

    return decode


def read_object(cls: type[T], document: Mapping[str, Any], where: str) -> T:
    """``document`` (a webhook's ``data.object``) as ``cls``; EventDecodeError naming the field."""
    try:
        return _converter().structure(document, cls)
    except Exception:  # redone below with paths, for a readable message
        pass
    import cattrs

    try:
        _converter(detailed=True).structure(document, cls)
    except Exception as error:  # any decoder failure becomes a ValueError with paths
        messages = (
            cattrs.transform_error(error, path=where)
            if isinstance(error, cattrs.BaseValidationError)
            else [f"{where}: {error}"]
        )
        raise EventDecodeError("; ".join(messages[:3])) from None
    raise EventDecodeError(f"{where}: the decoder rejected it")  # pragma: no cover
