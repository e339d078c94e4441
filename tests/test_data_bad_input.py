"""Every kind of bad input gives a one-line DataError naming the file, and the CLI exits 2 without a traceback."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from localft.cli.main import main
from localft.config import DataSpec
from localft.data.load import import_posts
from localft.errors import DataError

BAD = Path(__file__).resolve().parent / "fixtures" / "exports" / "bad"

# path, the words the message must contain (the file, where, and what is wrong)
CASES = [
    (BAD / "broken.zip", ["broken.zip", "not a readable zip archive", "download the export again"]),
    (BAD / "truncated-x", ["truncated-x/data/tweets.js line", "cut off", "download the X archive again"]),
    (
        BAD / "wrong-header",
        [
            "wrong-header/Shares.csv line 1",
            "missing column(s) ShareCommentary",
            "found: Date, Link, Text, Url",
        ],
    ),
    (BAD / "empty.csv", ["empty.csv", "is empty (0 bytes)"]),
    (BAD / "empty-linkedin", ["empty-linkedin", "holds no posts"]),
    (BAD / "reshares-only", ["no posts left", "reshares without commentary: 3"]),
    (BAD / "latin1.csv", ["latin1.csv line 2", "not UTF-8", "save the file as UTF-8"]),
    (
        BAD / "bad-chat.jsonl",
        [
            "bad-chat.jsonl: all 2 entries were skipped",
            "chat rows not ending with an assistant reply: 1",
            "chat rows starting with the assistant: 1",
            "must alternate user and assistant turns",
        ],
    ),
]


@pytest.mark.parametrize(("path", "words"), CASES, ids=lambda x: getattr(x, "name", None))
def test_bad_input_is_a_one_line_error(path, words):
    with pytest.raises(DataError) as info:
        import_posts(path, DataSpec())
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"min_chars": 5000}, ["'too short (< 5000 chars)' filter dropped the last 4", "lower --min-chars"]),
        ({"max_chars": 10}, ["'too long (> 10 chars)' filter dropped the last 3", "raise --max-chars"]),
        ({"language": "de"}, ["'not in language de' filter dropped the last 3", "--language"]),
    ],
)
def test_filter_that_drops_everything_is_named(options, words):
    with pytest.raises(DataError) as info:
        import_posts(BAD.parent / "linkedin-small", DataSpec(**options))
    for word in words:
        assert word in str(info.value)


def test_empty_folder_missing_path_and_unknown_format(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="is empty .no files."):
        import_posts(tmp_path / "empty", DataSpec())
    with pytest.raises(DataError, match="does not exist"):
        import_posts(tmp_path / "nope.zip", DataSpec())
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.png").write_bytes(b"\x89PNG\r\n")
    with pytest.raises(DataError, match="cannot tell which export"):
        import_posts(tmp_path / "photos", DataSpec())
    with pytest.raises(DataError, match="unknown format 'myspace'"):
        import_posts(BAD.parent / "linkedin-small", DataSpec(format="myspace"))


def test_substack_without_html_and_csv_without_text_column(tmp_path):
    export = tmp_path / "substack"
    (export / "posts").mkdir(parents=True)
    (export / "posts" / "other.html").write_text("<p>x</p>")
    (export / "posts.csv").write_text("post_id,post_date,is_published,title\n1.hello,2025-01-01,true,Hello\n")
    with pytest.raises(DataError, match=r"posts.csv line 2: no posts/1.hello.html"):
        import_posts(export, DataSpec())
    table = tmp_path / "table.csv"
    table.write_text("id,score\n1,2\n")
    with pytest.raises(DataError, match=r"table.csv line 1: no text column .*--text-column"):
        import_posts(table, DataSpec())


def test_zip_holding_a_cut_member(tmp_path):
    """A zip whose central directory is intact but whose member data is damaged."""
    path = tmp_path / "Basic_LinkedInDataExport_01-01-2026.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "Shares.csv", "Date,ShareLink,ShareCommentary,SharedUrl,MediaUrl,Visibility\n" + "x" * 5000
        )
    data = bytearray(path.read_bytes())
    data[60:90] = b"\xff" * 30  # corrupt the compressed stream
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="Shares.csv cannot be read"):
        import_posts(path, DataSpec())


@pytest.mark.parametrize(
    "path", [BAD / "broken.zip", BAD / "truncated-x", BAD / "empty.csv"], ids=lambda p: p.name
)
def test_cli_prints_one_line_and_exits_2(tmp_path, path, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["data", "import", str(path), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit.value.code == 2
    assert "Traceback" not in err
    assert err.startswith("error: ") and err.count("\n") == 1 and path.name in err
    assert not (tmp_path / "out" / "train.jsonl").exists()


def test_cli_rejects_a_bad_option_value(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["data", "import", str(BAD.parent / "linkedin-small"), "-o", str(tmp_path), "--urls", "hide"])
    assert exit.value.code == 2
    assert "urls: Input should be 'keep', 'strip' or 'placeholder'" in capsys.readouterr().err


def test_text_decoding_boms_utf16_without_bom_and_binary():
    from localft.data.source import decode_text

    text = "Date,Text\r\nGrüße 🙂,ok\r\n"
    assert decode_text(b"\xef\xbb\xbf" + text.encode(), "f") == "Date,Text\nGrüße 🙂,ok\n"
    assert decode_text(text.encode("utf-16"), "f") == "Date,Text\nGrüße 🙂,ok\n"
    assert (
        decode_text(text.encode("utf-16-le"), "f") == "Date,Text\nGrüße 🙂,ok\n"
    )  # no BOM: found by its zero bytes
    assert decode_text(text.encode("utf-16-be"), "f") == "Date,Text\nGrüße 🙂,ok\n"
    with pytest.raises(DataError, match="f is binary, not text"):
        decode_text(b"abc\x00\x01\x02\x03defgh", "f")


def test_password_protected_zip(tmp_path):
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("Shares.csv", "Date,ShareLink,ShareCommentary,SharedUrl,MediaUrl,Visibility\n")
    data = bytearray(path.read_bytes())
    data[6] |= 1  # the "encrypted" flag, in the local header...
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 1  # ...and in the central directory
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"export.zip:Shares.csv cannot be read \(.*encrypted"):
        import_posts(path, DataSpec())
