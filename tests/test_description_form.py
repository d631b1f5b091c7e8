"""The structured description as form fields and back: order kept, shapes respected, nothing lost."""

from __future__ import annotations

import json

import pytest

from labeling import description_form as form
from labeling.errors import InputError

MODEL = {
    "summary": "A boat",
    "objects": [{"name": "boat", "attributes": ["white"], "count": 1}],
    "scene": {"indoor_outdoor": "outdoor", "environment": "harbour"},
    "style": {"genre": "photo", "lighting": "day", "colors": ["white", "blue"]},
    "camera": {"shot": "wide", "fov": "normal", "lens": "35mm"},
    "text": "none",
    "quality": {"aesthetic": "fine", "issues": []},
}


def shown(description: dict | None) -> dict:
    return {field.key: field.value for field in form.form_fields(description)}


def test_fields_follow_the_models_order_with_an_input_for_each_kind() -> None:
    fields = form.form_fields(MODEL)
    assert [field.key for field in fields] == [
        "summary",
        "objects",
        "scene.indoor_outdoor",
        "scene.environment",
        "style.genre",
        "style.lighting",
        "style.colors",
        "camera.shot",
        "camera.fov",
        "camera.lens",
        "text",
        "quality.aesthetic",
        "quality.issues",
    ]
    kinds = {field.key: field.kind for field in fields}
    assert kinds["scene.indoor_outdoor"] == form.CHOICE and kinds["style.colors"] == form.TAGS
    assert kinds["objects"] == form.OBJECTS and kinds["summary"] == form.TEXT
    assert fields[2].options == ("indoor", "outdoor", "unclear")
    assert fields[2].label == "scene · indoor or outdoor"


def test_an_unchanged_form_gives_back_the_same_text_and_edits_stay_in_place() -> None:
    assert json.dumps(form.apply(MODEL, shown(MODEL))) == json.dumps(MODEL)
    values = shown(MODEL)
    values["scene.environment"] = "a rainy harbour"
    values["objects"] = [{"name": "boat", "attributes": "white, rusty"}, {"name": "", "attributes": ""}]
    values["style.colors"] = ["white", " ", "grey"]
    edited = form.apply(MODEL, values)
    assert edited is not None
    assert list(edited) == list(MODEL) and list(edited["scene"]) == ["indoor_outdoor", "environment"]
    assert edited["scene"]["environment"] == "a rainy harbour"
    assert edited["objects"] == [{"name": "boat", "attributes": ["white", "rusty"], "count": 1}]  # extras kept
    assert edited["style"]["colors"] == ["white", "grey"]


def test_a_value_the_schema_does_not_fit_is_edited_as_what_it_is() -> None:
    seed = {"summary": "A", "objects": ["dog", "ball"], "setting": "park", "count": 3}
    kinds = {field.key: field.kind for field in form.form_fields(seed)}
    assert kinds == {"summary": form.TEXT, "objects": form.TAGS, "setting": form.TEXT, "count": form.JSON}
    assert form.apply(seed, shown(seed)) == seed  # no schema field is added to a description of another shape


def test_empty_new_fields_stay_absent_and_bad_json_says_where() -> None:
    assert form.apply(None, {"summary": ""}) is None
    assert form.apply(None, {"summary": "x", "scene.environment": ""}) == {"summary": "x"}
    with pytest.raises(InputError, match="count"):
        form.apply({"count": 3}, {"count": "{3"})


def test_the_raw_json_view_keeps_the_typed_order_and_refuses_what_is_not_an_object() -> None:
    text = form.to_json(MODEL)
    assert list(form.parse_json(text) or {}) == list(MODEL)
    with pytest.raises(InputError, match="line 1"):
        form.parse_json("{")
    with pytest.raises(InputError, match="object"):
        form.parse_json("[1]")
    assert form.same({"a": 1, "b": 2}, {"b": 2, "a": 1}) and not form.same({"a": 1}, {"a": 2})
