"""The request shape written once: key sets, checks and wire order read from attrs definitions.

A params class is a ``@attrs.frozen`` value whose annotations say what each
field holds: ``str``, ``int``, ``bool``, a ``Literal`` enum, another params
class, ``tuple[X, ...]`` (a list) or ``Mapping[str, str]`` (metadata), each
optionally ``| None``. Field ``metadata`` adds what an annotation cannot say:

- ``max_length`` (default 5000), ``url`` (an absolute https URL),
  ``prefix`` (a Stripe ID such as ``prod_``), ``clearable`` (``""`` unsets),
- ``max_items`` for lists, ``minimum`` for integers.

From that alone :func:`structure` turns a mapping (or an instance) into a
checked instance, with the accepted keys of every level taken from
``attrs.fields``, and :func:`encode` writes it as Stripe's form body or query
string in field order. A new field is one line in its class.

The other way round, :func:`decode` reads a form body (as
:func:`~lattice_stripe.core.codec.decode_form` leaves it: strings) back into
JSON typed by the same fields, and :func:`defaults` is the JSON of an object
none of whose fields was sent, which is what a fake Stripe answers with.
"""

import functools
import types
from collections.abc import Callable, Mapping, Sequence
from typing import (
    Any,
    Literal,
    NoReturn,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
    get_type_hints,
)
from urllib.parse import quote

import attrs

from lattice_stripe.core.errors import ValidationError

__all__ = [
    "EXACT_TYPES",
    "Field",
    "decode",
    "defaults",
    "encode",
    "exact_copy",
    "fields_of",
    "keys_of",
    "list_field",
    "list_to_tuple",
    "structure",
]

T = TypeVar("T")
MAX_STRING = 5000
UrlCheck = Callable[[object, str], str]


@attrs.frozen
class Field:
    """One field of a params class, resolved once from its annotation and metadata."""

    name: str
    kind: Literal["str", "int", "bool", "enum", "object", "list", "map"]
    optional: bool
    required: bool
    choices: tuple[str, ...] = ()
    inner: "Field | None" = None
    cls: type | None = None
    max_length: int = MAX_STRING
    max_items: int | None = None
    minimum: int | None = None
    url: bool = False
    prefix: str | None = None
    clearable: bool = False


def _resolve(name: str, hint: Any, meta: Mapping[str, Any], required: bool) -> Field:
    optional = False
    if get_origin(hint) in (Union, types.UnionType):
        args = [arg for arg in get_args(hint) if arg is not type(None)]
        optional = len(args) < len(get_args(hint))
        (hint,) = args
    rules = {
        key: meta[key]
        for key in ("max_length", "max_items", "minimum", "url", "prefix", "clearable")
        if key in meta
    }
    origin = get_origin(hint)
    if hint is str:
        return Field(name, "str", optional, required, **rules)
    if hint is bool:
        return Field(name, "bool", optional, required)
    if hint is int:
        return Field(name, "int", optional, required, **rules)
    if origin is Literal:
        return Field(name, "enum", optional, required, choices=get_args(hint))
    if attrs.has(hint):
        return Field(name, "object", optional, required, cls=hint)
    if origin is tuple:
        item_meta = {key[5:]: value for key, value in meta.items() if key.startswith("item_")}
        inner = _resolve(f"{name}[]", get_args(hint)[0], item_meta, True)
        return Field(name, "list", optional, required, inner=inner, **rules)
    if origin is Mapping or origin is dict:
        return Field(name, "map", optional, required, **rules)
    raise TypeError(f"{name}: no wire shape for {hint!r}")  # pragma: no cover - a coding error


def fields_of(cls: type) -> tuple[Field, ...]:
    """The resolved fields of a params class, in definition (and wire) order."""
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = _fields(cls)
    return found


_FIELDS: dict[type, tuple[Field, ...]] = {}


def _fields(cls: Any) -> tuple[Field, ...]:
    hints = get_type_hints(cls)
    return tuple(
        _resolve(
            field.name,
            hints[field.name],
            field.metadata,
            field.default is attrs.NOTHING,
        )
        for field in attrs.fields(cls)
    )


def keys_of(cls: type) -> frozenset[str]:
    """The keys a mapping for ``cls`` may hold: its attrs field names."""
    found = _KEYS.get(cls)
    if found is None:
        found = _KEYS[cls] = frozenset(field.name for field in fields_of(cls))
    return found


_KEYS: dict[type, frozenset[str]] = {}


# -- exact builtins: what is checked is what is sent ----------------------------------

EXACT_TYPES = frozenset({str, int, float, bool, type(None)})
"""The leaf types taken as they are: nothing about them can differ between check and send."""


def exact_copy(value: Any, path: str) -> Any:
    """``value`` made of exact builtins, each container read once; ``value`` itself if it was.

    A ``str`` or ``int`` subclass can answer ``+`` or ``format`` differently
    from what the checks saw, and a container can iterate differently the
    second time: checks and encoders only ever get these copies (a list or
    tuple becomes a tuple, a mapping a dict, an attrs value the same value
    with exact fields). A container that raises while it is read is a
    ValidationError naming its path. Paths are only built for containers, the
    only values that can raise.
    """
    cls = type(value)
    if cls in EXACT_TYPES:
        return value
    if cls is dict:
        # An exact dict cannot iterate differently; only its contents may need copies.
        changed: dict[Any, Any] | None = None
        for key, item in value.items():
            exact_key = key if type(key) is str else exact_copy(key, path)
            exact_item = (
                item
                if type(item) in EXACT_TYPES
                else exact_copy(item, _join(path, key) if isinstance(key, str) else path)
            )
            if exact_key is not key or exact_item is not item:
                if changed is None:
                    changed = {}
                changed[key] = (exact_key, exact_item)
        if changed is None:
            return value
        return {
            changed[key][0] if key in changed else key: changed[key][1] if key in changed else item
            for key, item in value.items()
        }
    if cls is tuple or cls is list:
        entries = value
    # Subclasses of the builtins: their base type's own method makes the exact copy.
    elif issubclass(cls, str):
        return str.__str__(value)
    elif issubclass(cls, bool):
        return bool(value)
    elif issubclass(cls, int):
        return int.__int__(value)
    elif issubclass(cls, float):
        return float.__float__(value)
    elif attrs.has(cls):
        updates = {}
        for name in _init_names(cls):
            item = getattr(value, name)
            if type(item) not in EXACT_TYPES:
                exact = exact_copy(item, _join(path, name))
                if exact is not item:
                    updates[name] = exact
        return attrs.evolve(value, **updates) if updates else value
    elif isinstance(value, Mapping):
        try:
            items = list(value.items())
        except Exception:
            _unreadable(path, "mapping")
        return (
            exact_copy(dict(items), path)
            if all(type(k) is str for k, _ in items)
            else {exact_copy(key, path): exact_copy(item, path) for key, item in items}
        )
    elif isinstance(value, list | tuple):
        try:
            entries = list(value)
        except Exception:
            _unreadable(path, "list")
    else:
        return value
    exact_entries = tuple(
        entry if type(entry) in EXACT_TYPES else exact_copy(entry, f"{path}[{index}]")
        for index, entry in enumerate(entries)
    )
    if cls is tuple and all(
        copy is original for copy, original in zip(exact_entries, value, strict=False)
    ):
        return value
    return exact_entries


def _init_names(cls: type) -> tuple[str, ...]:
    found = _INIT_NAMES.get(cls)
    if found is None:
        found = _INIT_NAMES[cls] = tuple(
            field.name for field in attrs.fields(cast(Any, cls)) if field.init
        )
    return found


_INIT_NAMES: dict[type, tuple[str, ...]] = {}


def _unreadable(path: str, what: str) -> NoReturn:
    raise ValidationError(
        path or "params",
        f"could not be read: the {what} raised while it was read; pass a plain one",
    ) from None


# -- checking ------------------------------------------------------------------------


def _fail(path: str, reason: str) -> NoReturn:
    raise ValidationError(path, reason)


def _kind(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def list_to_tuple(value: Any) -> Any:
    """A list becomes a tuple; anything else is kept as given, for the guard to judge."""
    return tuple(value) if isinstance(value, list) else value


def list_field(**rules: Any) -> Any:
    """An optional list field of a params class (stored as a tuple), with its ``rules``."""
    return attrs.field(default=None, converter=list_to_tuple, metadata=rules)


def structure(cls: type[T], raw: object, path: str, url_check: UrlCheck) -> T:
    """Return ``raw`` (a mapping with string keys, or a ``cls``) as a checked ``cls``.

    Unknown keys, wrong types, unknown enum values, over-long strings and lists,
    bad URLs and IDs raise :class:`~lattice_stripe.core.errors.ValidationError`
    with the field path; the offending value is never echoed.
    """
    if isinstance(raw, cls):
        get: Callable[[str], object] = functools.partial(getattr, raw)
    elif isinstance(raw, Mapping):
        allowed = keys_of(cls)
        if not allowed.issuperset(raw):
            for key in raw:
                if not isinstance(key, str):
                    _fail(path or "params", f"every key must be a string, got {_kind(key)}")
                if key not in allowed:
                    shown = key if len(key) <= 40 and key.isprintable() else repr(key[:40])
                    where = f"'{path}'" if path else "the top level"
                    _fail(
                        _join(path, shown),
                        f"unknown parameter; {where} accepts only: {', '.join(sorted(allowed))}",
                    )
        get = raw.get
    else:
        _fail(path or "params", f"expected a mapping or a {cls.__name__}, got {_kind(raw)}")
    values: dict[str, object] = {}
    for field in fields_of(cls):
        value = get(field.name)
        field_path = _join(path, field.name)
        if type(value) not in EXACT_TYPES:
            value = exact_copy(value, field_path)
        if value is None:
            if field.required:
                _fail(field_path, "required")
            values[field.name] = None
            continue
        values[field.name] = _value(field, value, field_path, url_check)
    return cls(**values)


def _value(field: Field, value: object, path: str, url_check: UrlCheck) -> object:
    kind = field.kind
    if kind == "str":
        if not isinstance(value, str):
            _fail(path, f"expected a string, got {_kind(value)}")
        if value == "":
            if field.clearable:
                return value
            _fail(path, "must not be empty (Stripe reads an empty string as 'unset')")
        if len(value) > field.max_length:
            _fail(path, f"too long: at most {field.max_length} characters")
        if not value.isascii() and any("\ud800" <= char <= "\udfff" for char in value):
            _fail(path, "must be valid Unicode text: it contains a lone surrogate")
        if field.url:
            return url_check(value, path)
        if field.prefix is not None and not value.startswith(field.prefix):
            _fail(path, f"expected an ID starting with '{field.prefix}'")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            _fail(path, f"expected true or false, got {_kind(value)}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(path, f"expected an integer, got {_kind(value)}")
        if field.minimum is not None and value < field.minimum:
            _fail(path, f"must be {field.minimum} or more")
        return value
    if kind == "enum":
        if not isinstance(value, str) or value not in field.choices:
            _fail(path, f"unknown value; use one of {', '.join(map(repr, field.choices))}")
        return value
    if kind == "object":
        assert field.cls is not None
        return structure(field.cls, value, path, url_check)
    if kind == "list":
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            _fail(path, f"expected a list, got {_kind(value)} (pass [] to clear it)")
        entries: tuple[Any, ...] = (
            value
            if value.__class__ is tuple
            else exact_copy(_read(value, path), path)  # a Sequence beyond list and tuple
        )
        if field.max_items is not None and len(entries) > field.max_items:
            _fail(path, f"too many entries: at most {field.max_items}")
        inner = field.inner
        assert inner is not None
        return tuple(
            _value(inner, item, f"{path}[{index}]", url_check) for index, item in enumerate(entries)
        )
    if not isinstance(value, Mapping):
        _fail(path, f"expected a mapping of strings, got {_kind(value)}")
    return _metadata(value, path)


def _read(value: Any, path: str) -> list[Any]:
    try:
        return list(value)
    except Exception:
        _unreadable(path, "list")


MAX_METADATA_KEYS = 50
MAX_METADATA_KEY = 40
MAX_METADATA_VALUE = 500


def _metadata(value: Mapping[Any, Any], path: str) -> Mapping[str, str]:
    if len(value) > MAX_METADATA_KEYS:
        _fail(path, f"too many keys: Stripe allows at most {MAX_METADATA_KEYS}")
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            _fail(path, "every key must be a non-empty string")
        shown = key if len(key) <= MAX_METADATA_KEY and key.isprintable() else repr(key[:40])
        if len(key) > MAX_METADATA_KEY:
            _fail(f"{path}.{shown}", f"key too long: at most {MAX_METADATA_KEY} characters")
        if "[" in key or "]" in key:
            _fail(f"{path}.{shown}", "keys must not contain '[' or ']' (form encoding uses them)")
        if not isinstance(item, str):
            _fail(f"{path}.{shown}", f"expected a string value, got {_kind(item)}")
        if len(item) > MAX_METADATA_VALUE:
            _fail(f"{path}.{shown}", f"value too long: at most {MAX_METADATA_VALUE} characters")
    return types.MappingProxyType(dict(value))  # a copy: the caller's dict may change later


# -- encoding ------------------------------------------------------------------------


def _q(value: str) -> str:
    return quote(value, safe="")


def encode(value: object, *, query: bool = False) -> bytes:
    """Write a checked params value as Stripe's form body (or, with ``query``, query string).

    Fields go in definition order; ``None`` is left out; an empty list is sent
    as ``key=`` (Stripe's "clear this list"), never silently dropped. In a
    query string a list of plain values is ``key[]=v``, as Stripe's SDKs send
    ``expand[]``; in a form body it is indexed, ``key[0]=v``.
    """
    parts: list[str] = []
    _encode_object(value, "", parts, query)
    return "&".join(parts).encode("ascii")


def _encode_object(value: object, prefix: str, parts: list[str], query: bool) -> None:
    for field in fields_of(type(value)):
        item = getattr(value, field.name)
        if item is not None:
            key = f"{prefix}%5B{field.name}%5D" if prefix else field.name
            _encode_value(field, item, key, parts, query)


def _encode_value(field: Field, value: object, key: str, parts: list[str], query: bool) -> None:
    kind = field.kind
    if kind == "object":
        _encode_object(value, key, parts, query)
    elif kind == "list":
        assert isinstance(value, tuple)
        assert field.inner is not None
        if not value:
            parts.append(f"{key}=")
        for index, item in enumerate(value):
            item_key = (
                f"{key}%5B%5D"
                if query and field.inner.kind != "object"
                else (f"{key}%5B{index}%5D")
            )
            _encode_value(field.inner, item, item_key, parts, query)
    elif kind == "map":
        assert isinstance(value, Mapping)
        if not value:
            parts.append(f"{key}=")
        for name, item in value.items():
            parts.append(f"{key}%5B{_q(name)}%5D={_q(item)}")
    elif kind == "bool":
        parts.append(f"{key}={'true' if value else 'false'}")
    else:
        parts.append(f"{key}={_q(str(value))}")


# -- reading back --------------------------------------------------------------------


def decode(cls: type, form: Mapping[str, Any]) -> dict[str, Any]:
    """A decoded form body for ``cls`` as typed JSON: what Stripe stores from it.

    ``"true"``/``"false"`` become booleans and integers numbers; Stripe's empty
    value is an empty list or mapping (cleared) or ``None`` (an unset string);
    a metadata value ``""`` is ``None`` (remove the key). Keys ``cls`` does not
    have are kept as sent.
    """
    by_name = {field.name: field for field in fields_of(cls)}
    return {
        key: _decode(by_name[key], value) if key in by_name else value
        for key, value in form.items()
    }


def _decode(field: Field, value: Any) -> Any:
    kind = field.kind
    if kind == "object" and isinstance(value, Mapping):
        assert field.cls is not None
        return decode(field.cls, value)
    if kind == "list":
        assert field.inner is not None
        inner = field.inner
        return [_decode(inner, item) for item in value] if isinstance(value, list) else []
    if kind == "map":
        return (
            {name: item or None for name, item in value.items()}
            if isinstance(value, Mapping)
            else {}
        )
    if kind == "bool" and value in ("true", "false"):
        return value == "true"
    if kind == "int" and isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None if value == "" else value


def defaults(cls: type) -> dict[str, Any]:
    """The JSON of a ``cls`` none of whose fields was sent.

    Booleans are false, lists and mappings empty, other values ``None``; a
    nested object is its own defaults when it can have them (every required
    field a boolean), else ``None``.
    """
    return {field.name: _default(field) for field in fields_of(cls)}


def _default(field: Field) -> Any:
    if field.kind == "bool":
        return False
    if field.kind == "list":
        return []
    if field.kind == "map":
        return {}
    if field.kind == "object":
        assert field.cls is not None
        nested = fields_of(field.cls)
        if all(inner.kind == "bool" for inner in nested if inner.required):
            return defaults(field.cls)
    return None
