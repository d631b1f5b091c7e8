"""The seed's matching rules: exact name in any subfolder, then same stem; ambiguity is reported, not guessed."""

from __future__ import annotations

from labeling.matching import KeyIndex


def test_exact_name_in_any_subfolder() -> None:
    result = KeyIndex(["a/b/x.jpg", "y.png"]).match(["x.jpg", "y.png"])
    assert result.found == {"x.jpg": "a/b/x.jpg", "y.png": "y.png"}


def test_same_stem_with_another_extension() -> None:
    result = KeyIndex(["sub/x.png", "z.JPEG"]).match(["x.jpg", "z.jpg"])
    assert result.found == {"x.jpg": "sub/x.png", "z.jpg": "z.JPEG"}


def test_exact_name_wins_over_stem() -> None:
    result = KeyIndex(["x.png", "deep/x.jpg"]).match(["x.jpg"])
    assert result.found == {"x.jpg": "deep/x.jpg"}


def test_several_exact_candidates_are_ambiguous() -> None:
    result = KeyIndex(["a/x.jpg", "b/x.jpg"]).match(["x.jpg"])
    assert result.ambiguous == {"x.jpg": ["a/x.jpg", "b/x.jpg"]}
    assert not result.found


def test_several_stem_candidates_are_ambiguous() -> None:
    result = KeyIndex(["x.png", "x.webp"]).match(["x.jpg"])
    assert result.ambiguous == {"x.jpg": ["x.png", "x.webp"]}


def test_missing_and_non_images_do_not_match_by_stem() -> None:
    result = KeyIndex(["x.txt", "x.json"]).match(["x.jpg", "nothing.jpg"])
    assert result.missing == ["x.jpg", "nothing.jpg"]


def test_a_name_that_matches_only_ignoring_case_is_found_and_said_so() -> None:
    result = KeyIndex(["IMG.JPG", "X.png", "sub/Photo.PNG"]).match(["img.jpg", "x.jpg", "sub/photo.png", "y.jpg"])
    assert result.found == {"img.jpg": "IMG.JPG", "x.jpg": "X.png", "sub/photo.png": "sub/Photo.PNG"}
    assert result.how == {"img.jpg": "case", "x.jpg": "case", "sub/photo.png": "case"}
    assert result.missing == ["y.jpg"]


def test_an_exact_match_wins_over_a_case_match() -> None:
    result = KeyIndex(["a.jpg", "A.jpg"]).match(["a.jpg", "A.JPG"])
    assert result.found == {"a.jpg": "a.jpg"} and result.ambiguous == {"A.JPG": ["A.jpg", "a.jpg"]}
    assert result.how == {}


def test_stem_matches_are_reported() -> None:
    result = KeyIndex(["x.png"]).match(["x.jpg"])
    assert result.found == {"x.jpg": "x.png"} and result.how == {"x.jpg": "stem"}


def test_names_match_in_nfc_whatever_the_file_system_wrote() -> None:
    nfd = "cafe\u0301.jpg"  # as macOS writes "café.jpg"
    result = KeyIndex([nfd]).match(["caf\u00e9.jpg"])
    assert result.found == {"caf\u00e9.jpg": nfd} and result.how == {}


def test_listed_name_with_folder_must_match_its_folder() -> None:
    index = KeyIndex(["a/x.jpg", "b/x.jpg", "b/y.png"])
    result = index.match(["b/x.jpg", "b/y.jpg", "c/x.jpg"])
    assert result.found == {"b/x.jpg": "b/x.jpg", "b/y.jpg": "b/y.png"}
    assert result.missing == ["c/x.jpg"]


def test_names_without_extension_match_by_stem() -> None:
    assert KeyIndex(["photos/x.jpg"]).match(["x"]).found == {"x": "photos/x.jpg"}
