"""Rebuild the sample exports byte for byte: the LinkedIn demo archive, the labelled sets and notes
for the classify and domain-adapt recipes, and the test fixtures.

    python examples/make_samples.py

Everything is generated from fixed phrase pools and a fixed seed; the persona is invented.
"""

from __future__ import annotations

import csv
import io
import random
import shutil
import sys
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from linkedin_quirk import linkedin_commentary  # noqa: E402
from sample_exports import (  # noqa: E402
    X_ACCOUNT,
    _tweet,
    _ytd,
    write_mastodon,
    write_prepared,
    write_substack,
    write_text_notes,
    write_x,
)
from sample_labelled import write_domain_notes, write_emails_jsonl, write_reviews_csv  # noqa: E402
from sample_platforms import (  # noqa: E402
    write_bluesky,
    write_facebook,
    write_linkedin_complete,
    write_reddit,
    write_threads,
    write_x_long_posts,
)
from sample_pools import CLOSERS, EMOJI, TOPICS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
FIXTURES = ROOT / "tests" / "fixtures" / "exports"
SHARES_HEADER = ["Date", "ShareLink", "ShareCommentary", "SharedUrl", "MediaUrl", "Visibility"]
# Four posts per hook share at most one body sentence, so no two posts are near-duplicates.
BODY_TRIPLES = [(0, 1, 2), (0, 3, 4), (1, 3, 5), (2, 4, 5)]
ZIP_TIME = (2026, 11, 20, 9, 0, 0)


def compose_post(topic: dict, k: int, rng: random.Random) -> str:
    hook = topic["hooks"][k % 3]
    a, b, c = (topic["body"][i] for i in BODY_TRIPLES[(k // 3) % 4])
    if k % 2:
        b, c = c, b
    parts = [hook, f"{a}\n{b}"]
    if k % 2 == 0:
        items = [x for i, x in enumerate(topic["list"]) if i != k % 4]
        parts.append("What works for us:\n" + "\n".join(f"→ {x}" for x in items))
    parts.append(c)
    question = topic["questions"][(k + k // 3) % 3]
    emoji = f" {rng.choice(EMOJI)}" if rng.random() < 0.2 else ""
    parts.append(f"{CLOSERS[(k * 7 + len(hook)) % 4]} {question}{emoji}")
    tags = topic["tags"]
    parts.append(f"{tags[k % 3 if len(tags) > 2 else k % 2]} {tags[(k + 1) % len(tags)]}")
    return "\n\n".join(parts)


def share_link(n: int) -> str:
    return f"https://www.linkedin.com/feed/update/urn%3Ali%3Ashare%3A71{n:017d}"


def linkedin_rows(rng: random.Random, as_exported: bool = True) -> list[list[str]]:
    """150 posts (10 per topic), 5 reshares without commentary, 2 reposts, 1 edited repost, 1 short post;
    the text as LinkedIn writes it, or as typed (`as_exported=False`, what the import must give back)."""
    posts = [compose_post(topic, k, rng) for topic in TOPICS.values() for k in range(10)]
    posts[7] += "\n\nI wrote the long version here: https://mayalindqvist.dev/blog/small-prs"
    posts[23] = posts[23].replace("\n\n#", "\n\nQuestions welcome at maya.lindqvist@example.com\n\n#", 1)
    posts[41] += "\n\nOur hiring line is open until Friday: +46 70 123 45 67"
    rng.shuffle(posts)
    rows = []
    when = datetime(2026, 10, 30, 8, 15, 3)
    for i, text in enumerate(posts):
        rows.append([when, share_link(i), text, "", "", "MEMBER_NETWORK" if i % 5 else "PUBLIC"])
        when -= timedelta(days=rng.randint(3, 8), minutes=rng.randint(0, 600))
    for i, shared in enumerate(["https://example.com/report-2025", "https://example.org/talk", "https://example.net/paper",
                                "https://example.com/podcast/42", "https://example.org/hiring-guide"]):  # fmt: skip
        rows.insert(
            10 + i * 25, [rows[10 + i * 25][0], share_link(900 + i), "", shared, "", "MEMBER_NETWORK"]
        )
    rows.append([datetime(2023, 1, 9, 7, 30, 0), share_link(950), posts[3], "", "", "MEMBER_NETWORK"])
    rows.append([datetime(2023, 1, 2, 7, 30, 0), share_link(951), posts[60], "", "", "PUBLIC"])
    edited = posts[90].replace(". ", ", ", 1).replace("\n\n#", " 🙂\n\n#", 1)
    rows.append([datetime(2022, 12, 20, 18, 2, 11), share_link(952), edited, "", "", "MEMBER_NETWORK"])
    rows.append(
        [datetime(2022, 12, 12, 12, 0, 0), share_link(953), "New job, same bike. 🚲", "", "", "PUBLIC"]
    )
    # LinkedIn wraps each line of a multi-line post in quotes, and so does every real Shares.csv
    encode = linkedin_commentary if as_exported else str
    return [[d.strftime("%Y-%m-%d %H:%M:%S"), link, encode(text), *rest] for d, link, text, *rest in rows]


def csv_bytes(header: list[str], rows: list[list[str]], bom: bool = False) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode("utf-8")


def profile_csv() -> bytes:
    header = [
        "First Name",
        "Last Name",
        "Maiden Name",
        "Address",
        "Birth Date",
        "Headline",
        "Summary",
        "Industry",
    ]
    row = ["Maya", "Lindqvist", "", "", "", "Engineering manager. Small PRs, calm on-call, long bike rides.",
           "I lead a platform team of nine.", "Software Development"]  # fmt: skip
    return csv_bytes(header, [row], bom=True)


def write_zip(path: Path, files: dict[str, bytes]) -> None:
    """Stored (uncompressed) members with fixed timestamps, so the archive is identical on every run."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    path.write_bytes(buf.getvalue())


def write_linkedin_demo() -> None:
    rows = linkedin_rows(random.Random(20261120))
    comments = csv_bytes(
        ["Date", "Link", "Message"], [["2026-10-01 10:00:00", share_link(5), "Great point, thanks!"]]
    )
    write_zip(
        EXAMPLES / "linkedin-export.zip",
        {
            "Profile.csv": profile_csv(),
            "Shares.csv": csv_bytes(SHARES_HEADER, rows, bom=True),
            "Comments.csv": comments,
        },
    )


def write_linkedin_small(out: Path) -> None:
    """No BOM, CRLF, multi-line quoted commentary, doubled quotes, reshares, a comma-heavy post."""
    rows = [
        ["2026-09-14 07:41:09", share_link(1), 'We call it the "two-day rule":\r\nno pull request waits longer than two days.\r\n\r\nIt sounds small. It changed everything.\r\n\r\nWhat is your rule? #CodeReview', "", "", "MEMBER_NETWORK"],
        ["2026-09-10 12:00:00", share_link(2), "", "https://example.com/article", "", "MEMBER_NETWORK"],
        ["2026-09-03 18:22:47", share_link(3), "Rain, 6 degrees, headwind.\r\nStill the best part of my day. 🚲🌧️\r\n\r\nWhere do you do your best thinking?", "", "https://media.example.com/ride.jpg", "PUBLIC"],
        ["2026-08-28 09:05:00", share_link(4), "Hiring: senior backend engineer, remote (EU), salary €85,000–€100,000.\r\nQuestions? Write to jobs@example.com or call +46 70 123 45 67.", "", "", "PUBLIC"],
        ["2026-08-20 16:30:00", share_link(5), "", "https://example.org/talk", "", "MEMBER_NETWORK"],
        ["2026-08-11 08:00:00", share_link(6), "Thanks!", "", "", "MEMBER_NETWORK"],
    ]  # fmt: skip
    for row in rows:  # the per-line quotes, with CRLF inside the field as well
        row[2] = linkedin_commentary(row[2].replace("\r\n", "\n"), newline="\r\n")
    out.mkdir(parents=True, exist_ok=True)
    (out / "Shares.csv").write_bytes(csv_bytes(SHARES_HEADER, rows))
    (out / "Profile.csv").write_bytes(profile_csv())


def write_bad_cases(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "empty.csv").write_bytes(b"")
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(
            zipfile.ZipInfo("Shares.csv", date_time=ZIP_TIME),
            csv_bytes(
                SHARES_HEADER,
                [
                    [
                        "2026-01-01 00:00:00",
                        "x",
                        "A post that will never be read because the zip is cut.",
                        "",
                        "",
                        "PUBLIC",
                    ]
                ],
            ),
        )
    (out / "broken.zip").write_bytes(good.getvalue()[:150])  # cut mid-member: no central directory
    wrong = csv_bytes(
        ["Date", "Link", "Text", "Url"],
        [["2026-01-01 00:00:00", "x", "Some text here that is long enough.", ""]],
    )
    (out / "wrong-header").mkdir(exist_ok=True)
    (out / "wrong-header" / "Shares.csv").write_bytes(wrong)
    (out / "empty-linkedin").mkdir(exist_ok=True)
    (out / "empty-linkedin" / "Shares.csv").write_bytes(csv_bytes(SHARES_HEADER, []))
    reshares = [
        [f"2026-01-0{i} 00:00:00", share_link(i), "", f"https://example.com/{i}", "", "PUBLIC"]
        for i in range(1, 4)
    ]
    (out / "reshares-only").mkdir(exist_ok=True)
    (out / "reshares-only" / "Shares.csv").write_bytes(csv_bytes(SHARES_HEADER, reshares))
    utf16_rows = [
        [
            "2026-02-02 10:00:00",
            share_link(7),
            "Grüße aus Göteborg! Ett inlägg på svenska och tyska, med emoji 🙂.\r\nZweite Zeile.",
            "",
            "",
            "PUBLIC",
        ]
    ]
    text = csv_bytes(SHARES_HEADER, utf16_rows).decode("utf-8")
    (out / "utf16").mkdir(exist_ok=True)
    (out / "utf16" / "Shares.csv").write_bytes(text.encode("utf-16"))  # BOM + UTF-16-LE, as Excel saves it
    (out / "latin1.csv").write_bytes(
        "text\nCaf\u00e9 culture is a remote work anti-pattern, discuss.\n".encode("latin-1")
    )
    (out / "bad-chat.jsonl").write_text(
        '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there, how can I help?"}]}\n'
        '{"messages": [{"role": "user", "content": "No reply here"}]}\n',
        encoding="utf-8",
    )


def main() -> None:
    write_linkedin_demo()
    write_reviews_csv(EXAMPLES / "reviews.csv")
    write_emails_jsonl(EXAMPLES / "emails.jsonl")
    write_domain_notes(EXAMPLES / "workshop-notes")
    if FIXTURES.exists():
        shutil.rmtree(FIXTURES)
    write_linkedin_small(FIXTURES / "linkedin-small")
    write_x(FIXTURES / "x-archive")
    write_mastodon(FIXTURES / "mastodon-archive")
    write_substack(FIXTURES / "substack-export")
    write_text_notes(FIXTURES / "text-notes")
    write_prepared(FIXTURES / "prepared")
    write_threads(FIXTURES / "threads-export")
    write_facebook(FIXTURES / "facebook-export")
    write_bluesky(FIXTURES / "bluesky")
    write_reddit(FIXTURES / "reddit-export")
    shares = [
        ["2025-06-02 08:10:00", share_link(21), "Our quarterly planning fits on one page now. Goals, non-goals, owners. Nothing else survives contact anyway.", "", "", "PUBLIC"],
        ["2025-06-09 08:10:00", share_link(22), "", "https://example.com/report-2025", "", "MEMBER_NETWORK"],
        ["2025-06-16 08:10:00", share_link(23), "I read every incident review aloud in our team meeting. Ten minutes, and the lesson spreads further than any document.", "", "", "MEMBER_NETWORK"],
    ]  # fmt: skip
    write_linkedin_complete(
        FIXTURES / "linkedin-complete", csv_bytes(SHARES_HEADER, shares, bom=True), profile_csv()
    )
    write_x_long_posts(FIXTURES / "x-long-posts", _tweet, _ytd, X_ACCOUNT)
    write_bad_cases(FIXTURES / "bad")
    truncated = FIXTURES / "bad" / "truncated-x" / "data"
    truncated.mkdir(parents=True)
    full = (FIXTURES / "x-archive" / "data" / "tweets.js").read_bytes()
    (truncated / "tweets.js").write_bytes(full[: len(full) * 2 // 3])  # a download cut short
    print(
        f"wrote {EXAMPLES / 'linkedin-export.zip'}, reviews.csv, emails.jsonl, workshop-notes/ and {FIXTURES}"
    )


if __name__ == "__main__":
    main()
