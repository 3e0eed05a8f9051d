"""The expandable paths of a portal session, checked against Stripe's OpenAPI excerpts."""

import json
from typing import Any

from lattice_stripe.core.expand import MAX_EXPAND_DEPTH, SESSION_EXPANDABLE
from stripe_api import STRIPE_API


def _refs(prop: dict[str, Any]) -> list[str]:
    """The schema names a property's schema points at."""
    found = [prop["$ref"].rsplit("/", 1)[1]] if "$ref" in prop else []
    for key in ("anyOf", "oneOf", "allOf"):
        for option in prop.get(key, ()):
            found += _refs(option)
    if "items" in prop:
        found += _refs(prop["items"])
    return found


def _walk(schemas: dict[str, Any], name: str, prefix: str) -> set[str]:
    """Every dotted path reachable through ``x-expandableFields`` from schema ``name``."""
    paths: set[str] = set()
    schema = schemas[name]
    for field in schema.get("x-expandableFields", ()):
        path = prefix + field
        paths.add(path)
        for target in _refs(schema["properties"][field]):
            if target in schemas:
                paths |= _walk(schemas, target, path + ".")
    return paths


def test_session_expandable_is_the_specs_walk_up_to_four_levels() -> None:
    """SESSION_EXPANDABLE is x-expandableFields from billing_portal.session, at most 4 deep."""
    excerpt = json.loads((STRIPE_API / "session_object.json").read_text())
    schemas = excerpt.get("components", {}).get("schemas", excerpt)
    supplement = json.loads((STRIPE_API / "newer_2026-08-26.dahlia_supplement.json").read_text())
    [newer_flow] = [value for key, value in supplement.items() if "portal_flows_flow " in key]
    schemas["portal_flows_flow"] = newer_flow
    walked = _walk(schemas, "billing_portal.session", "")
    assert "configuration.application" in walked
    assert {path for path in walked if path.count(".") < MAX_EXPAND_DEPTH} == SESSION_EXPANDABLE
