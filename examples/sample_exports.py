"""Small exports for X, Mastodon, Substack, a notes folder and prepared datasets, in their real formats.

Written by make_samples.py into tests/fixtures/exports/; the counts the tests expect are noted per file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

ACCOUNT_ID = "1187654321098765432"
OTHER_ID = "2233445566778899"


def _tweet(
    id_str, text, created, reply_to=None, reply_user=None, reply_name=None, urls=(), media=(), start=0
):
    tweet = {
        "edit_info": {"initial": {"editTweetIds": [id_str], "editableUntil": "2026-01-01T00:00:00.000Z", "editsRemaining": "5", "isEditEligible": True}},
        "retweeted": False,
        "source": '<a href="https://mobile.twitter.com" rel="nofollow">Twitter Web App</a>',
        "entities": {
            "hashtags": [], "symbols": [], "user_mentions": [],
            "urls": [{"url": u, "expanded_url": e, "display_url": e.split("//", 1)[1][:24], "indices": ["0", "23"]} for u, e in urls],
        },
        "display_text_range": [str(start), str(len(text))],
        "favorite_count": "3", "id_str": id_str, "truncated": False, "retweet_count": "0", "id": id_str,
        "created_at": created, "favorited": False, "full_text": text, "lang": "en",
    }  # fmt: skip
    if media:
        tweet["entities"]["media"] = [
            {"url": m, "expanded_url": "https://x.com/mayalindqvist/status/1/photo/1", "type": "photo"}
            for m in media
        ]
    if reply_to:
        tweet.update(in_reply_to_status_id_str=reply_to, in_reply_to_status_id=reply_to,
                     in_reply_to_user_id=reply_user, in_reply_to_user_id_str=reply_user, in_reply_to_screen_name=reply_name)  # fmt: skip
    return {"tweet": tweet}


def _ytd(name: str, part: int, entries: list) -> str:
    return f"window.YTD.{name}.part{part} = " + json.dumps(
        entries, indent=2, ensure_ascii=False, separators=(",", " : ")
    )


X_ACCOUNT = [{"account": {"email": "maya@example.com", "createdVia": "web", "username": "mayalindqvist", "accountId": ACCOUNT_ID,
                          "createdAt": "2011-03-02T10:00:00.000Z", "accountDisplayName": "Maya Lindqvist"}}]  # fmt: skip


def write_x(out: Path) -> None:
    """14 tweets: 2 retweets, 2 replies to others, a 3-part self-thread, 1 too short, 1 exact repeat -> 6 posts."""
    me = (ACCOUNT_ID, "mayalindqvist")
    part0 = [
        _tweet("1790000000000000001", "Small PRs get reviews. Big PRs get a thumbs up &amp; a prayer. 🙏", "Mon May 13 07:02:11 +0000 2024"),
        _tweet("1790000000000000002", "Wrote up how we cut pager noise by 78% last quarter, with the alert checklist we use: https://t.co/AbC123xyZ",
               "Tue May 14 09:30:00 +0000 2024", urls=[("https://t.co/AbC123xyZ", "https://mayalindqvist.dev/blog/pager-noise")]),
        _tweet("1790000000000000003", "Rule of thumb: written decision &gt; meeting &gt; hallway chat. Fight me.", "Wed May 15 12:00:00 +0000 2024"),
        _tweet("1790000000000000004", "RT @kelsey_builds: The best runbook is the one someone tried on a quiet Tuesday.", "Wed May 15 13:00:00 +0000 2024"),
        _tweet("1790000000000000005", "@devon_writes Agreed, the setup script is the real onboarding doc. Ours takes forty minutes now.",
               "Thu May 16 08:00:00 +0000 2024", reply_to="1780000000000000099", reply_user=OTHER_ID, reply_name="devon_writes", start=13),
        _tweet("1790000000000000006", "Five things I learned running on-call for a year. A thread 🧵", "Fri May 17 06:45:00 +0000 2024"),
        _tweet("1790000000000000007", "1/ Every alert must be actionable. If the answer is “wait and see”, it is not an alert.",
               "Fri May 17 06:46:00 +0000 2024", reply_to="1790000000000000006", reply_user=me[0], reply_name=me[1]),
        _tweet("1790000000000000008", "@mayalindqvist 2/ Pay people for the pager, and give the day after a night page off. No debate.",
               "Fri May 17 06:47:00 +0000 2024", reply_to="1790000000000000007", reply_user=me[0], reply_name=me[1], start=15),
        _tweet("1790000000000000009", "Monday. Coffee. ☕", "Mon May 20 06:00:00 +0000 2024"),
        _tweet("1790000000000000010", "Friday ride crew, 6 degrees and smiling anyway. Best meeting of the week. https://t.co/MediaPic1",
               "Fri May 24 15:00:00 +0000 2024", media=["https://t.co/MediaPic1"]),
    ]  # fmt: skip
    part1 = [
        _tweet("1800000000000000001", "RT @acme_eng: We are hiring platform engineers in Stockholm and remote.", "Mon Jun 03 10:00:00 +0000 2024"),
        _tweet("1800000000000000002", "Hiring: senior backend engineer, remote in the EU. Salary range in the post &amp; the questions sent ahead. &lt;3 to @acme_jobs for the help.",
               "Tue Jun 04 10:00:00 +0000 2024"),
        _tweet("1800000000000000003", "@sam_ops Blameless does not mean nobody is responsible. It means we fix systems, not people.",
               "Wed Jun 05 10:00:00 +0000 2024", reply_to="1799999999999999999", reply_user=OTHER_ID, reply_name="sam_ops", start=8),
        _tweet("1800000000000000004", "Small PRs get reviews. Big PRs get a thumbs up &amp; a prayer. 🙏", "Thu Jun 06 10:00:00 +0000 2024"),
    ]  # fmt: skip
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "account.js").write_text(_ytd("account", 0, X_ACCOUNT), encoding="utf-8")
    (data / "tweets.js").write_text(_ytd("tweets", 0, part0), encoding="utf-8")
    (data / "tweets-part1.js").write_text(_ytd("tweets", 1, part1), encoding="utf-8")


ACTOR = "https://fosstodon.example/users/maya"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
FOLLOWERS = ACTOR + "/followers"


def _create(n, html, to, cc, reply_to=None, summary=None, published="2025-03-01T08:00:00Z"):
    note_id = f"{ACTOR}/statuses/11{n:016d}"
    note = {
        "id": note_id, "type": "Note", "summary": summary, "inReplyTo": reply_to, "published": published,
        "url": f"https://fosstodon.example/@maya/11{n:016d}", "attributedTo": ACTOR, "to": to, "cc": cc,
        "sensitive": summary is not None, "atomUri": note_id, "conversation": f"tag:fosstodon.example,2025:objectId={n}",
        "content": html, "contentMap": {"en": html}, "attachment": [], "tag": [], "replies": {"id": note_id + "/replies", "type": "Collection"},
    }  # fmt: skip
    return {
        "id": note_id + "/activity",
        "type": "Create",
        "actor": ACTOR,
        "published": published,
        "to": to,
        "cc": cc,
        "object": note,
    }


def _announce(n, target, published="2025-03-02T08:00:00Z"):
    return {"id": f"{ACTOR}/statuses/12{n:016d}/activity", "type": "Announce", "actor": ACTOR, "published": published,
            "to": [PUBLIC], "cc": [FOLLOWERS], "object": target}  # fmt: skip


def write_mastodon(out: Path) -> None:
    """11 activities: 2 boosts, 1 followers-only, 1 direct, 1 reply to another person, a 2-part thread -> 5 posts."""
    tag = (
        '<a href="https://fosstodon.example/tags/{0}" class="mention hashtag" rel="tag">#<span>{0}</span></a>'
    )
    link = ('<a href="https://mayalindqvist.dev/blog/meeting-free-wednesdays" target="_blank" rel="nofollow noopener noreferrer">'
            '<span class="invisible">https://</span><span class="ellipsis">mayalindqvist.dev/blog/meeting</span>'
            '<span class="invisible">-free-wednesdays</span></a>')  # fmt: skip
    root = _create(
        8,
        "<p>Things I got wrong in my first year as a manager, a short thread.</p><p>First: I thought my calendar was my job.</p>",
        [PUBLIC],
        [FOLLOWERS],
        published="2025-03-05T07:00:00Z",
    )
    items = [
        _create(1, f"<p>Documentation is a gift to the person you will be in six months.</p><p>We test the quickstart on every merge.<br />If a step breaks, the build breaks.</p><p>{tag.format('DevEx')} {tag.format('Documentation')}</p>", [PUBLIC], [FOLLOWERS]),
        _create(2, "<p>Unlisted musing: the bike commute is where my architecture reviews really happen. 🚲</p>", [FOLLOWERS], [PUBLIC]),
        _create(3, "<p>Followers only: rough week, team is tired, we are cutting scope on purpose.</p>", [FOLLOWERS], []),
        _create(4, '<p><span class="h-card"><a href="https://social.example/@sam" class="u-url mention">@<span>sam</span></a></span> private note: can we move our call?</p>', ["https://social.example/users/sam"], []),
        _announce(5, "https://social.example/users/sam/statuses/555"),
        _announce(6, "https://mastodon.example/users/lee/statuses/666"),
        _create(7, '<p><span class="h-card"><a href="https://social.example/@sam" class="u-url mention">@<span>sam</span></a></span> agreed, incident reviews read aloud spread the lesson.</p>', [PUBLIC], [FOLLOWERS, "https://social.example/users/sam"], reply_to="https://social.example/users/sam/statuses/777"),
        root,
        _create(9, "<p>Second: I answered questions my team could have answered better. Now I ask &quot;what do you think?&quot; first.</p>", [PUBLIC], [FOLLOWERS], reply_to=root["object"]["id"], published="2025-03-05T07:05:00Z"),
        _create(10, "<p>I burned out in 2019 and did not notice until I stopped enjoying rides.</p><p>The signs were all there: short answers, late nights, no opinions in meetings.</p>", [PUBLIC], [FOLLOWERS], summary="burnout, mental health"),
        _create(11, f"<p>Wednesday afternoons are meeting-free on our team. People guard them like a holiday ☕</p><p>How we got there: {link}</p>", [PUBLIC], [FOLLOWERS]),
    ]  # fmt: skip
    outbox = {"@context": "https://www.w3.org/ns/activitystreams", "id": ACTOR + "/outbox", "type": "OrderedCollection",
              "totalItems": len(items), "orderedItems": items}  # fmt: skip
    actor = {"@context": "https://www.w3.org/ns/activitystreams", "id": ACTOR, "type": "Person", "preferredUsername": "maya",
             "name": "Maya Lindqvist", "summary": "<p>Engineering manager. Small PRs, calm on-call.</p>"}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "outbox.json").write_text(json.dumps(outbox, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "actor.json").write_text(json.dumps(actor, indent=2, ensure_ascii=False), encoding="utf-8")


SUBSTACK_POSTS = [
    ("141000001.the-two-day-rule", "2025-01-12T09:00:00.000Z", "true", "The two-day rule", "Why no pull request waits longer than two days",
     "<p>Code review is not a gate. It is a conversation.</p><p>Two years ago our median pull request waited four days for a first comment. Today it waits six hours.</p><h3>What changed</h3><ul><li>Small pull requests</li><li>Reviews within one working day</li><li>Questions before assertions</li></ul><p>None of it needed a tool. All of it needed a habit.</p>"),
    ("141000002.calm-on-call", "2025-02-09T09:00:00.000Z", "true", "Calm on-call", "From 41 pages a quarter to 9",
     "<p>Nobody should dread their on-call week.</p><p>We deleted every alert nobody acted on, paid people for the pager, and gave the day after a night page off.</p><blockquote><p>A runbook that nobody has tried is a hope, not a runbook.</p></blockquote><p>What would make your on-call week better tomorrow?</p>"),
    ("141000003.draft-hiring-notes", "", "false", "Hiring notes (draft)", "",
     "<p>Draft: we share interview questions in advance. More soon.</p>"),
    ("141000004.learning-rust-slowly", "2025-04-06T09:00:00.000Z", "true", "Learning Rust, slowly", "Notes from a manager who still codes on Fridays",
     "<p>I learned Rust this year. Slowly, badly, and happily. 📚</p><p>The borrow checker is a patient teacher &amp; a strict one.<br>Friday mornings are for learning on our team: not a perk, a plan.</p>"),
]  # fmt: skip


def write_substack(out: Path) -> None:
    """posts.csv with 4 rows (1 draft) and posts/<post_id>.html -> 3 posts."""
    header = [
        "post_id",
        "post_date",
        "is_published",
        "email_sent_at",
        "inbox_sent_at",
        "type",
        "audience",
        "title",
        "subtitle",
        "podcast_url",
    ]
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    (out / "posts").mkdir(parents=True, exist_ok=True)
    for post_id, date, published, title, subtitle, html in SUBSTACK_POSTS:
        writer.writerow([post_id, date, published, date, date, "newsletter", "everyone", title, subtitle, ""])
        (out / "posts" / f"{post_id}.html").write_text(html, encoding="utf-8")
    (out / "posts.csv").write_text(buf.getvalue(), encoding="utf-8")


def write_text_notes(out: Path) -> None:
    """3 files, 5 posts (one with front matter, three split by ---, one too short) -> 4 posts."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "2025-ride.md").write_text(
        "---\ntitle: Thinking on the bike\ndate: 2025-05-02\n---\n"
        "My commute is 14 km by bike. It is my best thinking time.\n\nNo slides, no messages, just the road and one question in my head.\n",
        encoding="utf-8",
    )
    (out / "short-posts.md").write_text(
        "Heroics are a sign of a broken plan, not of a great engineer.\n\nSustainable pace is a feature. Ship it.\n"
        "---\nOk.\n---\n"
        "Estimates are not promises.\nA range tells the truth; a single number tells a story someone will hold you to.\n",
        encoding="utf-8",
    )
    (out / "meetings.txt").write_text(
        "A meeting without a decision is a podcast with worse audio.\n\nEvery invite now needs a one-line goal. No goal, no meeting.\n",
        encoding="utf-8",
    )


def write_prepared(out: Path) -> None:
    """chat.jsonl (4 rows, 1 exact repeat -> 3), completions.jsonl (3), text.jsonl (3), posts.csv (4, 1 short -> 3), posts.jsonl (3)."""
    out.mkdir(parents=True, exist_ok=True)
    chat = [
        [{"role": "system", "content": "You are Maya."}, {"role": "user", "content": "Write a post about code review."}, {"role": "assistant", "content": "Code review is a conversation, not a gate."}],
        [{"role": "user", "content": "How do you run on-call?"}, {"role": "assistant", "content": "Every alert must be actionable. Mail me at maya@example.com for our checklist."}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "One tip for meetings?"}, {"role": "assistant", "content": "Put a goal in every invite."}],
        [{"role": "system", "content": "You are Maya."}, {"role": "user", "content": "Write a post about code review."}, {"role": "assistant", "content": "Code review is a conversation, not a gate."}],
    ]  # fmt: skip
    (out / "chat.jsonl").write_text(
        "".join(json.dumps({"messages": m}, ensure_ascii=False) + "\n" for m in chat), encoding="utf-8"
    )
    completions = [
        ("Write a tweet about estimates.", "Estimates are not promises."),
        ("Write a tweet about docs.", "If it is not written down, it is a rumour."),
        ("Write a tweet about rest.", "Rest is part of the job description. 🙂"),
    ]
    (out / "completions.jsonl").write_text(
        "".join(
            json.dumps({"prompt": p, "completion": c}, ensure_ascii=False) + "\n" for p, c in completions
        ),
        encoding="utf-8",
    )
    texts = [
        "Small pull requests get real feedback.",
        "Overlap hours matter more than office days.",
        "Specific praise teaches. Good job teaches nothing.",
    ]
    (out / "text.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "date", "content"])
    writer.writerows([
        ["p1", "2025-01-01", "Teaching is the fastest way to find out what you do not understand."],
        ["p2", "2025-01-08", 'We call it the "boring question" rule:\nstart every one-on-one with "how are you, really?"'],
        ["p3", "2025-01-15", "Too short."],
        ["p4", "2025-01-22", "Customers forgive an outage. They do not forgive silence during one."],
    ])  # fmt: skip
    (out / "posts.csv").write_text(buf.getvalue(), encoding="utf-8")
    rows = [{"text": "The oldest code is rarely the worst. The code nobody owns is.", "date": "2025-02-01"},
            {"text": "Debt you choose on purpose is a loan. Debt you do not notice is a leak.", "date": "2025-02-08"},
            {"text": "Paying debt is easiest right after shipping, while the context is still warm.", "date": "2025-02-15"}]  # fmt: skip
    (out / "posts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
