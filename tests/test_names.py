"""CSV lists of names: every shape teams keep them in."""

from __future__ import annotations

import pytest

from labeling.errors import InputError
from labeling.names import parse_name_list, rejection_reason
from tests.conftest import FIXTURES


def test_headerless_seed_list_keeps_first_line() -> None:
    data = (FIXTURES / "REAL_example.csv").read_bytes()
    names = parse_name_list(data)
    assert names.header is None
    assert names.names[0] == "dmp98_0f9c5017-a4b6-47e3-89ef-445d224d3697_real.jpg"
    assert len(names.names) == len(data.decode().split())


@pytest.mark.parametrize("header", ["image_name", "filename", "file", "name", "key", "Image_Name", "FILE_NAME"])
def test_known_headers_are_skipped(header: str) -> None:
    names = parse_name_list(f"{header}\na.jpg\nb.jpg\n".encode())
    assert names.names == ["a.jpg", "b.jpg"]
    assert names.header == header


def test_bom_crlf_blank_lines_and_spaces() -> None:
    data = "\ufeffimage_name\r\n  a.jpg \r\n\r\nb.png\r\n\r\n".encode()
    names = parse_name_list(data)
    assert names.names == ["a.jpg", "b.png"]


def test_bom_on_headerless_list_does_not_stick_to_first_name() -> None:
    assert parse_name_list("\ufeffa.jpg\nb.jpg".encode()).names == ["a.jpg", "b.jpg"]


def test_duplicates_are_counted_and_kept_once() -> None:
    names = parse_name_list(b"a.jpg\nb.jpg\na.jpg\na.jpg\n")
    assert names.names == ["a.jpg", "b.jpg"]
    assert names.duplicates == 2
    assert names.listed == 2


def test_multi_column_csv_with_header_picks_the_name_column() -> None:
    data = b'id,filename,label\n1,"x, with comma.jpg",REAL\n2,y.jpg,GEN\n'
    assert parse_name_list(data).names == ["x, with comma.jpg", "y.jpg"]


def test_semicolon_separated_csv() -> None:
    assert parse_name_list(b"file;label\na.jpg;REAL\n").names == ["a.jpg"]


@pytest.mark.parametrize("name", ["/etc/passwd", "../secret.jpg", "a/../../b.jpg", "a\\..\\b.jpg", "C:\\x.jpg",
                                  "bad\x00name.jpg", "tab\tname.jpg", "bell\x07.jpg"])
def test_unsafe_names_are_rejected_and_reported(name: str) -> None:
    assert rejection_reason(name)
    names = parse_name_list(("ok.jpg\n" + name + "\n").encode("utf-8"))
    assert names.names == ["ok.jpg"]
    assert len(names.rejected) == 1
    shown, reason = names.rejected[0]
    assert "\x00" not in shown and "\x07" not in shown
    assert reason


@pytest.mark.parametrize("name", ["a..b.jpg", "sub/dir/x.jpg", "ünïcödé 写真.jpg", "name with spaces.png"])
def test_ordinary_names_are_accepted(name: str) -> None:
    assert rejection_reason(name) is None
    assert parse_name_list(name.encode()).names == [name]


def test_empty_list_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="no image names"):
        parse_name_list(b"\n\n  \n")
    with pytest.raises(InputError, match="no image names"):
        parse_name_list(b"image_name\n")


def test_binary_file_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="not UTF-8"):
        parse_name_list(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x80\x81", "photo.jpg")
