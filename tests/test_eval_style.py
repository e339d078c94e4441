"""Style fingerprint, verbatim leak check and JSON scores on small real texts."""

from localft.eval.fingerprint import fingerprint, post_features, style_distance
from localft.eval.json_shape import json_scores, parse_strict
from localft.eval.leak import leak_check, leak_summary

LINKEDIN = [
    "Big news! 🚀 We shipped the new release today.\n\n- faster builds\n- fewer bugs\n\nWhat would you add? #devtools #shipping",
    "Three lessons from a year of hiring 👇\n\n1. Write the job down\n2. Pay on time\n3. Say no quickly\n\nAgree? #hiring",
    "I almost quit last week. 😅 Glad I didn't!\n\nThe team pulled through. Who else has been there? #leadership",
]
ESSAYS = [
    "The history of the printing press is a long one, and it is worth telling slowly because each step "
    "depended on the one before it, from the screw press of the vintners to movable type.",
    "When we consider the economics of shipping containers we find that the box itself mattered less "
    "than the standard that let every port handle it in the same way.",
]


def test_post_features_count_what_a_reader_sees():
    f = post_features(LINKEDIN[1])
    assert f["hashtags_per_100_words"] > 0
    assert f["emoji_per_100_words"] > 0
    assert f["lines"] == 5
    assert f["list_line_share"] == 3 / 5
    assert f["question_share"] > 0
    plain = post_features(ESSAYS[0])
    assert plain["hashtags_per_100_words"] == plain["emoji_per_100_words"] == plain["list_line_share"] == 0
    assert plain["words_per_sentence"] > 30


def test_same_style_is_closer_than_another_style():
    real = fingerprint(LINKEDIN)
    assert style_distance(real, real) == 0
    similar = fingerprint(
        ["Shipped it! 🎉\n\n- one\n- two\n\nThoughts? #build", "New job 🙌 Who's hiring? #career"]
    )
    assert style_distance(similar, real) < style_distance(fingerprint(ESSAYS), real)


def test_leak_check_finds_the_copied_passage():
    train = [
        "Yesterday I finally understood why our onboarding failed: nobody wrote down the first week, "
        "so every new hire guessed.",
        "Coffee is a tool, not a personality.",
    ]
    copied = "Honestly, nobody wrote down the first week, so every new hire guessed what to do next."
    fresh = "A brand new thought about gardening in the spring with my daughter."
    leaks = leak_check([copied, fresh], train, flag_words=8)
    assert leaks[0].length == 11
    assert leaks[0].passage == "nobody wrote down the first week so every new hire guessed"
    assert leaks[0].flagged and not leaks[1].flagged
    assert leaks[1].length <= 1
    summary = leak_summary(leaks)
    assert summary["longest"] == 11 and summary["flagged"] == [leaks[0].passage]


def test_json_scores_are_strict():
    refs = ['{"name": "Ada", "city": "London"}', '{"name": "Linus", "city": "Helsinki"}']
    assert parse_strict('Sure! {"name": "Ada"}') is None
    perfect = json_scores(
        ['{"city": "london", "name": "Ada"}', '{"name": "Linus", "city": "Helsinki"}'], refs
    )
    assert perfect == {"valid_json_rate": 1.0, "key_match_rate": 1.0, "field_accuracy": 1.0}
    partial = json_scores(['{"name": "Ada", "city": "Paris"}', "name: Linus"], refs)
    assert partial["valid_json_rate"] == 0.5
    assert partial["field_accuracy"] == 1 / 4
