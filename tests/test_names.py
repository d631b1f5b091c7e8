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


@pytest.mark.parametrize(
    "name",
    [
        "/etc/passwd",
        "../secret.jpg",
        "a/../../b.jpg",
        "a\\..\\b.jpg",
        "C:\\x.jpg",
        "bad\x00name.jpg",
        "tab\tname.jpg",
        "bell\x07.jpg",
    ],
)
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


# --- lists as users really have them: the shape comes from the file, not its first line -------------------


def test_an_unquoted_comma_in_a_one_column_list_is_part_of_the_name() -> None:
    data = b"a,b.jpg\n" + b"".join(f"img{i}.jpg\n".encode() for i in range(20))
    names = parse_name_list(data)
    assert names.names[0] == "a,b.jpg" and len(names.names) == 21


@pytest.mark.parametrize("first", ["photo;1.jpg", "tab\there.jpg", "pipe|1.jpg"])
def test_a_delimiter_on_the_first_line_alone_does_not_cut_names(first: str) -> None:
    data = (first + "\n" + "".join(f"img{i}.jpg\n" for i in range(20))).encode()
    names = parse_name_list(data)
    expected = first if "\t" not in first else None  # a tab is a control character: rejected, never cut
    assert (names.names[0] == expected) if expected else names.rejected[0][0] == "tab\\there.jpg"
    assert len(names.names) == (21 if expected else 20)


def test_a_stray_quote_costs_its_own_line_and_is_reported_with_its_number() -> None:
    lines = [f"img{i:04d}.jpg" for i in range(1000)]
    lines[10] = 'img"0010.jpg'
    names = parse_name_list("\n".join(lines).encode())
    assert len(names.names) == 1000 and names.names[10] == 'img"0010.jpg' and names.names[11] == "img0011.jpg"
    assert names.notes == ["line 11 has an unmatched quote: read as 'img\"0010.jpg'"]


def test_a_stray_quote_in_a_table_costs_one_row() -> None:
    rows = ["file,label"] + [f"img{i}.jpg,REAL" for i in range(50)]
    rows[5] = '"img4.jpg,REAL'
    names = parse_name_list("\n".join(rows).encode())
    assert len(names.names) == 50 and "img5.jpg" in names.names
    assert any("line 6 has an unmatched quote" in note for note in names.notes)


def test_an_unknown_header_is_recognised_and_reported() -> None:
    data = b"id,img\n" + b"".join(f"{i},pic{i}.png\n".encode() for i in range(30))
    names = parse_name_list(data)
    assert names.header == "img" and names.names[0] == "pic0.png" and len(names.names) == 30
    assert names.notes == ["first row 'id,img' taken as a header (it names no image; the rows after it do)"]


def test_excels_sep_line_is_honoured() -> None:
    names = parse_name_list(b"sep=;\nfile;label\na.jpg;REAL\nb.jpg;GEN\n")
    assert names.names == ["a.jpg", "b.jpg"] and "set the delimiter" in names.notes[0]


def test_only_cr_lf_and_crlf_end_a_line() -> None:
    names = parse_name_list("odd\u2028name.jpg\nother\u0085name.jpg\r\nlast.jpg\rfinal.jpg".encode())
    assert names.names == ["odd\u2028name.jpg", "other\u0085name.jpg", "last.jpg", "final.jpg"]


def test_a_bom_in_the_middle_is_dropped() -> None:
    assert parse_name_list("a.jpg\n\ufeffb.jpg\n".encode()).names == ["a.jpg", "b.jpg"]


def test_names_are_nfc_and_backslashes_are_folders() -> None:
    names = parse_name_list("cafe\u0301.jpg\nsub\\x.jpg\n".encode())
    assert names.names == ["caf\u00e9.jpg", "sub/x.jpg"]


def test_an_encoding_error_names_its_line() -> None:
    data = b"".join(f"img{i}.jpg\n".encode() for i in range(5000)) + "d\u00e9j\u00e0.jpg\n".encode("latin-1")
    with pytest.raises(InputError, match=r"line 5,001 has the byte 0xE9"):
        parse_name_list(data)
