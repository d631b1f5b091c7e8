"""The structured description as form fields, and back: one input per field, in the order the model wrote them.

`form_fields` walks a description in its own key order (then adds the schema's fields it lacks, in schema order),
and says for each leaf what kind of input edits it: a text, a choice (an enum), tags (a list of strings), an
objects table (name and attributes) or raw JSON (a shape the schema does not name). `apply` writes edited values
back into a copy of the description, so every field and nested key keeps its place; a field that was absent and
is left empty stays absent. `parse_json` is the raw-JSON view's check before a save.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labeling.annotators.prompts import describe_schema
from labeling.errors import InputError

Path = tuple[str, ...]
TEXT, CHOICE, TAGS, OBJECTS, JSON = "text", "choice", "tags", "objects", "json"
SUMMARY = "summary"
_LABELS = {"indoor_outdoor": "indoor or outdoor", "fov": "field of view", "text": "visible text"}


@dataclass(frozen=True)
class FormField:
    path: Path  # ("scene", "environment")
    kind: str  # TEXT, CHOICE, TAGS, OBJECTS or JSON
    value: Any  # as the input shows it: str, list[str], list[dict] (objects) or JSON text
    options: tuple[str, ...] = ()  # a CHOICE's values
    long: bool = False  # a text worth a text area (the summary)

    @property
    def label(self) -> str:
        return " · ".join(_LABELS.get(part, part.replace("_", " ")) for part in self.path)

    @property
    def key(self) -> str:
        return ".".join(self.path)


def _schema_properties() -> dict[str, Any]:
    return dict(describe_schema()["properties"])


def _fits(kind: str, value: Any) -> bool:
    """Whether a stored value has the shape the schema's input edits (else it is judged by its value)."""
    if value is None:
        return True
    if kind in (TEXT, CHOICE):
        return isinstance(value, str)
    if kind == TAGS:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if kind == OBJECTS:
        return isinstance(value, list) and all(_is_object_row(item) for item in value)
    return True


def _kind(schema: Mapping[str, Any] | None, value: Any) -> str:
    by_schema = _schema_kind(schema) if schema else None
    if by_schema is not None and _fits(by_schema, value):
        return by_schema
    return _value_kind(value)


def _schema_kind(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    items = schema.get("items", {})
    if kind == "STRING":
        return CHOICE if schema.get("enum") else TEXT
    if kind == "ARRAY":
        return OBJECTS if items.get("type") == "OBJECT" else TAGS
    return None


def _value_kind(value: Any) -> str:
    """The input for a value the schema does not describe."""
    if value is None or isinstance(value, str):
        return TEXT
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return TAGS
    if isinstance(value, list) and value and all(_is_object_row(item) for item in value):
        return OBJECTS
    return JSON


def _is_object_row(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("name"), str)


def _shown(kind: str, value: Any) -> Any:
    if kind == TEXT:
        return value if isinstance(value, str) else "" if value is None else json.dumps(value, ensure_ascii=False)
    if kind == CHOICE:
        return value if isinstance(value, str) else ""
    if kind == TAGS:
        return [str(item) for item in value] if isinstance(value, list) else []
    if kind == OBJECTS:
        rows = value if isinstance(value, list) else []
        return [
            {"name": str(row.get("name", "")), "attributes": ", ".join(str(a) for a in row.get("attributes") or [])}
            for row in rows
            if isinstance(row, dict)
        ]
    return "" if value is None else json.dumps(value, ensure_ascii=False)


def _ordered_keys(value: Mapping[str, Any] | None, schema: Mapping[str, Any]) -> list[str]:
    present = list(value or {})
    return present + [key for key in schema if key not in present]


def form_fields(description: Mapping[str, Any] | None) -> list[FormField]:
    """One field per editable leaf, in the description's own order, then the schema's missing fields."""
    properties = _schema_properties()
    description = description or {}
    fields: list[FormField] = []
    if not description or 2 * sum(key in properties for key in description) >= len(properties):
        keys = _ordered_keys(description, properties)
    else:  # another shape (a seed CSV's own fields): its own fields, and a summary to fill in
        keys = list(description) if SUMMARY in description else [SUMMARY, *description]
    for key in keys:
        schema, value = properties.get(key), description.get(key)
        nested = (schema or {}).get("properties") if (schema or {}).get("type") == "OBJECT" else None
        if nested is None and schema is None and isinstance(value, dict):
            nested = {}
        if nested is not None and (value is None or isinstance(value, dict)):
            for sub in _ordered_keys(value, nested):
                sub_schema, sub_value = nested.get(sub), (value or {}).get(sub)
                kind = _kind(sub_schema, sub_value)
                options = tuple((sub_schema or {}).get("enum") or ())
                fields.append(FormField((key, sub), kind, _shown(kind, sub_value), options))
            continue
        kind = _kind(schema, value)
        fields.append(FormField((key,), kind, _shown(kind, value), long=key == SUMMARY))
    return fields


def _stored(field: FormField, shown: Any, before: Any) -> Any:
    """An input's value as the description stores it."""
    if field.kind in (TEXT, CHOICE):
        return str(shown or "")
    if field.kind == TAGS:
        return [str(tag).strip() for tag in shown or [] if str(tag).strip()]
    if field.kind == OBJECTS:
        rows = []
        olds = before if isinstance(before, list) else []
        for i, row in enumerate(shown or []):
            name = str(row.get("name") or "").strip()
            attributes = [a.strip() for a in str(row.get("attributes") or "").split(",") if a.strip()]
            if not name and not attributes:
                continue  # an empty row of the table is no object
            old = olds[i] if i < len(olds) and isinstance(olds[i], dict) else {}
            rows.append({**old, "name": name, "attributes": attributes})  # other keys of the object stay
        return rows
    text = str(shown or "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"The field {field.label!r} must be valid JSON ({exc.msg} at character {exc.pos + 1}): fix it, then save."
        ) from None


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def apply(description: Mapping[str, Any] | None, values: Mapping[str, Any]) -> dict[str, Any] | None:
    """The description with edited values (field key "scene.environment" -> shown value) written in place.

    Keys keep their order; a field absent before and left empty stays absent; None when there was no
    description and nothing was filled in. InputError names a JSON field that does not parse."""
    result: dict[str, Any] = copy.deepcopy(dict(description or {}))
    for field in form_fields(description):
        if field.key not in values:
            continue
        parent: dict[str, Any] = result
        for part in field.path[:-1]:
            if not isinstance(parent.get(part), dict):
                parent[part] = {}
            parent = parent[part]
        leaf = field.path[-1]
        present = leaf in parent
        value = _stored(field, values[field.key], parent.get(leaf))
        if present or not _empty(value):
            parent[leaf] = value
    for key in [key for key, value in result.items() if isinstance(value, dict) and not value]:
        if key not in (description or {}):
            del result[key]  # a group added only for fields left empty
    return result or (None if not description else result)


def to_json(description: Mapping[str, Any] | None) -> str:
    """The raw-JSON view's text: indented, keys in their order."""
    return json.dumps(dict(description or {}), ensure_ascii=False, indent=2)


def parse_json(text: str) -> dict[str, Any] | None:
    """The raw-JSON view's text as a description, keys in the order typed; InputError says what is wrong."""
    if not text.strip():
        return None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"The description is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. "
            "Fix it, or switch back to the form, then save."
        ) from None
    if not isinstance(parsed, dict):
        raise InputError("The description must be a JSON object ({...}) with one key per field.")
    return parsed


def same(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether two descriptions hold the same values, whatever their key order."""
    return json.dumps(a or None, sort_keys=True) == json.dumps(b or None, sort_keys=True)
