"""Counts read right in every message: one image, two images."""

from labeling.wording import count


def test_a_count_takes_the_noun_in_its_number() -> None:
    assert count(1, "image") == "1 image"
    assert count(0, "image") == "0 images"
    assert count(1234, "file") == "1,234 files"
    assert count(2, "category", "categories") == "2 categories"
