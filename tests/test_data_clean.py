"""Cleaning, dedup, language, prompts and the split, on small inputs whose right answer is known."""

from __future__ import annotations

import pytest

from localft.config import DataSpec
from localft.data.clean import clean_text
from localft.data.dataset import split_groups
from localft.data.dedup import duplicate_clusters
from localft.data.html_text import html_to_text
from localft.data.language import guess_language
from localft.data.posts import Post, Tally
from localft.data.prompts import default_system_prompt, keyword_phrases, keyword_request, split_hashtag


def _clean(text: str, **kw) -> tuple[str, dict]:
    tally = Tally()
    options = {"scrub": True, "handles": False, "urls": "placeholder", **kw}
    return clean_text(text, tally=tally, **options), tally.changed


def test_pii_placeholders():
    text, changed = _clean(
        "Mail maya.l+jobs@example.co.uk or call +46 70 123 45 67 / (555) 010-4477.\n"
        "Office: 221 Baker Street, and Hauptstraße 12 in Berlin. Ping @maya_l on Mastodon."
    )
    assert text == (
        "Mail [email] or call [phone] / [phone].\nOffice: [address], and [address] in Berlin. Ping @maya_l on Mastodon."
    )
    assert changed == {"emails replaced": 1, "addresses replaced": 2, "phones replaced": 2}
    handles, _ = _clean("Thanks @maya_l and @sam@social.example!", handles=True)
    assert handles == "Thanks @user and @user!"


def test_numbers_that_are_not_phones_stay():
    text, changed = _clean("On 2024-03-12 we hit 1,000,000 users; Q3 grew 12.5% vs 2023. Call at 10.30.")
    assert text == "On 2024-03-12 we hit 1,000,000 users; Q3 grew 12.5% vs 2023. Call at 10.30."
    assert changed == {}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("keep", "Read https://ex.com/a?id=5551234567 (and www.ex.org/b)."),
        ("placeholder", "Read [link] (and [link])."),
        ("strip", "Read (and)."),
    ],
)
def test_url_policy_and_no_pii_inside_links(policy, expected):
    text, _ = _clean("Read https://ex.com/a?id=5551234567 (and www.ex.org/b).", urls=policy)
    assert text == expected


def test_emoji_and_non_ascii_are_exact():
    original = "Grüße 🙂🚲 — “quotes”, ñ, 日本語, e\u0301.\n\nNext paragraph   \n\n\n\nlast"
    text, _ = _clean(original)
    assert text == "Grüße 🙂🚲 — “quotes”, ñ, 日本語, e\u0301.\n\nNext paragraph\n\nlast"


def test_html_to_text_keeps_paragraphs_and_breaks():
    html = "<p>One &amp; two<br>three</p>\n<p>  Four   <b>bold</b>  </p><script>x()</script><ul><li>a</li><li>b</li></ul>"
    assert html_to_text(html) == "One & two\nthree\n\nFour bold\n\n- a\n- b"


def test_duplicate_clusters_exact_and_near():
    base = "Code review is not a gate. It is a conversation between two people who care about the code."
    texts = [
        base,
        "Something else entirely: my bike commute is 14 km and it is my best thinking time.",
        base.upper().replace(". ", ".  "),  # same after case and whitespace folding
        base.replace("two people", "2 people"),  # a small edit
        "Code review is a habit. Small pull requests get real feedback, big ones get a thumbs up.",
    ]
    groups, why = duplicate_clusters(texts, 0.85)
    assert groups == [0, 1, 0, 0, 4]
    assert why == ["", "", "exact", "near", ""]
    _, strict = duplicate_clusters(texts, 1.0)
    assert strict == ["", "", "exact", "", ""]


def test_split_is_seeded_sized_and_keeps_clusters_together():
    keys = [f"post number {i} about topic {i % 7}" for i in range(100)]
    groups = list(range(100))
    groups[50] = groups[51] = groups[52] = 50  # near-duplicates of one another
    spec = DataSpec(valid_fraction=0.1, test_fraction=0.2, seed=3)
    first = split_groups(keys, groups, spec)
    assert first == split_groups(keys, groups, spec)
    assert len({first[50], first[51], first[52]}) == 1
    counts = {s: first.count(s) for s in ("train", "valid", "test")}
    assert abs(counts["test"] - 20) <= 2 and abs(counts["valid"] - 10) <= 2
    assert split_groups(keys, groups, spec.model_copy(update={"seed": 4})) != first
    # a reordered input keeps every post in the same split
    order = list(reversed(range(100)))
    remap = {old: new for new, old in enumerate(order)}
    shuffled = split_groups([keys[i] for i in order], [remap[groups[i]] for i in order], spec)
    assert [shuffled[remap[i]] for i in range(100)] == first
    assert split_groups(["a", "b"], [0, 1], spec).count("train") >= 1


def test_language_guess():
    assert guess_language("The team is tired and we are cutting scope on purpose, but that is fine.") == "en"
    assert guess_language("Das ist nicht die Lösung, aber wir sind auf dem Weg und es wird besser.") == "de"
    assert guess_language("Ett inlägg på svenska och det är inte svårt att läsa för oss.") == "sv"
    assert guess_language("🚲🚲") is None


def test_keyword_requests_and_system_prompt():
    post = Post(
        text="Remote onboarding lives or dies on docs.\n\nWrite the onboarding docs first. #RemoteWork #DevOps"
    )
    # the opening line's phrase first; one hashtag that shares no word with it second
    assert keyword_phrases(post.text) == ["remote onboarding", "DevOps"]
    assert keyword_request(post, "linkedin") == "Write a LinkedIn post about remote onboarding and DevOps."
    assert (
        keyword_request(Post(text="ok", title="Calm on-call"), "substack")
        == "Write a Substack post titled “Calm on-call”."
    )
    assert keyword_request(Post(text="🙂"), "x") == "Write a post for X."
    assert (
        split_hashtag("OnCall") == "on call"
        and split_hashtag("SRE") == "SRE"
        and split_hashtag("DevOps") == "DevOps"
    )
    assert (
        default_system_prompt("mastodon", None)
        == "You are the author. Write each Mastodon post in your own voice."
    )
