"""Small exports for Threads, Facebook, Bluesky, Reddit, LinkedIn articles and X long posts, in their real
layouts, for the same invented persona. Written by make_samples.py into tests/fixtures/exports/; the counts
the tests expect are noted per writer. Meta's files carry its escaping (UTF-8 bytes as \\u00XX escapes).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bluesky_car import repo_car, tid
from meta_escapes import meta_json

NAME = "Maya Lindqvist"
# Posted on Threads first and on Bluesky the same day: the several-source import keeps one copy.
CROSS_POSTED = "A runbook nobody has tried is a hope, not a runbook. We rehearse ours on quiet Tuesdays now."
# Also in tests/fixtures/exports/linkedin-small (its second row), posted again on Facebook.
LINKEDIN_REPEAT = (
    "Rain, 6 degrees, headwind.\nStill the best part of my day. 🚲🌧️\n\nWhere do you do your best thinking?"
)


def _stamp(day: int, hour: int = 8) -> int:
    return int(datetime(2025, 9, day, hour, 15, tzinfo=UTC).timestamp())


def _thread_item(text: str, day: int, reply: bool = False, uri: str = "", top_title: bool = False) -> dict:
    media = {"uri": uri, "creation_timestamp": _stamp(day), "title": "" if top_title else text,
             "media_metadata": {"camera_metadata": {"has_camera_metadata": False}},
             "cross_post_source": {"source_app": "FB"},
             "text_app_post": {"reply_control": "everyone", "geo_gated_country_list": "", "is_reply": reply}}  # fmt: skip
    item = {"media": [media]}
    if top_title:
        item.update(title=text, creation_timestamp=_stamp(day))
        item["media"].append({**media, "uri": "media/posts/202509/17900000000000002.jpg"})
    return item


def write_threads(out: Path) -> None:
    """10 entries: 2 replies, 1 photo without text, 1 too short, 1 exact repeat -> 5 posts (1 email)."""
    first = "Fika at 10:00 is not a break from the work in Göteborg. It is where half our design decisions happen ☕🇸🇪"
    items = [
        _thread_item(first, 1),
        _thread_item(CROSS_POSTED, 2),
        _thread_item("agreed — the pager rota should be boring, that is the whole point of it", 3, reply=True),
        _thread_item("@sam.okafor yes, ship it on Thursday and write the note on Friday", 3, reply=True),
        _thread_item("", 4, uri="media/posts/202509/17900000000000001.jpg"),
        _thread_item("Three photos from the team offsite: one whiteboard, one lake, one very tired manager.", 5, top_title=True),
        _thread_item("Fika time ☕", 6),
        _thread_item(first, 7),
        _thread_item("Hiring a staff engineer for the platform team. Questions? maya.lindqvist@example.com or a DM here.", 8),
        _thread_item("Things I say in every 1:1 now:\n\n→ What is in your way?\n→ What should I stop doing?\n→ What would you change if you were me?\n\nThe third one gets the best answers.", 9),
    ]  # fmt: skip
    root = out / "your_instagram_activity" / "threads"
    root.mkdir(parents=True, exist_ok=True)
    (root / "threads_and_replies.json").write_text(
        meta_json({"text_post_app_text_posts": items}), encoding="ascii"
    )
    profile = {"text_post_app_text_post_app_profile": [{"media_map_data": {}, "string_map_data": {
        "Username": {"href": "", "value": "maya.lindqvist", "timestamp": 0},
        "Name": {"href": "", "value": NAME, "timestamp": 0},
        "Private Account": {"href": "", "value": "False", "timestamp": 0}}}]}  # fmt: skip
    (root / "personal_information.json").write_text(meta_json(profile), encoding="ascii")
    likes = {"text_post_app_media_likes": [{"title": "sam.okafor", "media_list_data": [], "string_list_data": [
        {"href": "https://www.threads.com/@sam.okafor/post/DAbCdEfGhIj", "value": "👍", "timestamp": _stamp(9)}]}]}  # fmt: skip
    (root / "liked_threads.json").write_text(meta_json(likes), encoding="ascii")


def _fb_post(day: int, text: str | None, title: str, attachments: list | None = None) -> dict:
    post = {"timestamp": _stamp(day, 18)}
    if attachments:
        post["attachments"] = attachments
    post["data"] = ([{"post": text}] if text is not None else []) + [{"update_timestamp": _stamp(day, 18)}]
    post["title"] = title
    return post


def write_facebook(out: Path) -> None:
    """9 posts: 2 shares without text, 1 on someone else's timeline, 1 near-duplicate -> 5 posts (1 phone)."""
    status = ("Five years ago today I became a manager. I thought the job was answering questions. "
              "It turned out to be asking better ones, and then waiting a little longer for the answers. "
              "Tack to everyone who waited with me 💙")  # fmt: skip
    link = {
        "data": [
            {"external_context": {"url": "https://mayalindqvist.dev/blog/pager-noise", "name": "Pager noise"}}
        ]
    }
    photo = {"data": [{"media": {"uri": "your_facebook_activity/posts/media/Photos/10160000000000001.jpg",
                                  "creation_timestamp": _stamp(6, 18), "title": ""}}]}  # fmt: skip
    caption = {"data": [{"media": {"uri": "your_facebook_activity/posts/media/Photos/10160000000000002.jpg",
                                    "creation_timestamp": _stamp(7, 18), "title": "",
                                    "description": "Midsummer in Dalarna: no laptops, one maypole, far too much herring 🌼"}}]}  # fmt: skip
    posts = [
        _fb_post(1, status, f"{NAME} updated her status."),
        _fb_post(2, "We cut pager noise by 78% last quarter. The checklist we used is in the post, steal it.", f"{NAME} shared a link.", [link]),
        _fb_post(3, None, f"{NAME} shared a link.", [link]),
        _fb_post(6, None, f"{NAME} added a new photo.", [photo]),
        _fb_post(7, None, f"{NAME} added a new photo.", [caption]),
        _fb_post(8, "Happy birthday Sam! Thank you for a year of calm on-call weeks and very good cinnamon buns.", f"{NAME} wrote on Sam Okafor's timeline."),
        _fb_post(9, LINKEDIN_REPEAT, f"{NAME} updated her status."),
        _fb_post(10, status.replace("a little longer", "a bit longer"), f"{NAME} updated her status."),
        _fb_post(11, "Our team is hiring in Göteborg. Call me on +46 70 123 45 67 if you want the honest version of the job.", f"{NAME} updated her status."),
    ]  # fmt: skip
    posts_dir = out / "your_facebook_activity" / "posts"
    posts_dir.mkdir(parents=True, exist_ok=True)
    (posts_dir / "your_posts_1.json").write_text(meta_json(posts), encoding="ascii")
    profile_dir = out / "personal_information" / "profile_information"
    profile_dir.mkdir(parents=True, exist_ok=True)
    profile = {"profile_v2": {"name": {"full_name": NAME, "first_name": "Maya", "last_name": "Lindqvist"}}}
    (profile_dir / "profile_information.json").write_text(meta_json(profile), encoding="ascii")


BSKY_DID = "did:plc:w4xbfzo7kqfes5zb7r6qv3rw"
OTHER_DID = "did:plc:ragtjsm2j2vknwkz3zp4oxrd"


def write_bluesky(out: Path) -> None:
    """repo.car: 9 posts + 2 reposts (likes, a follow and the profile are not posts): 2 reposts, 1 reply to
    someone else, 1 image without text, 1 too short; a 2-part self-thread joined -> 5 posts (1 link)."""
    t0 = datetime(2025, 10, 1, 7, 30, tzinfo=UTC)

    def at(i: int) -> tuple[str, str]:
        when = t0 + timedelta(days=i)
        return tid(when), when.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def post(i: int, text: str, **extra) -> tuple[str, str, dict]:
        rkey, created = at(i)
        return (
            "app.bsky.feed.post",
            rkey,
            {"$type": "app.bsky.feed.post", "text": text, "createdAt": created, "langs": ["en"], **extra},
        )

    label = "mayalindqvist.dev/blog/pager-n..."
    link_text = f"How we cut pager noise by 78%, with the alert checklist we use: {label}"
    start = len(link_text.encode()) - len(label.encode())
    facets = [{"index": {"byteStart": start, "byteEnd": len(link_text.encode())},
               "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://mayalindqvist.dev/blog/pager-noise"}]}]  # fmt: skip
    root = post(2, "Five things I learned running on-call for a year. A thread 🧵")
    ref = {
        "uri": f"at://{BSKY_DID}/app.bsky.feed.post/{root[1]}",
        "cid": "bafyreihc3imtbvmxmfv7xp2ha2qvhqyumrhl4srorsh7kvadbxqqntnn4i",
    }
    other = {
        "uri": f"at://{OTHER_DID}/app.bsky.feed.post/3lbvq5ecxfk2a",
        "cid": "bafyreib2rxk3rh6kzwq6byq4mdmgwaqvuhtgqgpxnmdtrzixfrpsunbsdm",
    }
    tag_text = "Göteborg rain, 6 degrees, bike commute anyway. Best thinking time of the week 🚲 #OnCall"
    tag = {"index": {"byteStart": len(tag_text.encode()) - len(b"#OnCall"), "byteEnd": len(tag_text.encode())},
           "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "OnCall"}]}  # fmt: skip
    records = [
        ("app.bsky.actor.profile", "self", {"$type": "app.bsky.actor.profile", "displayName": NAME, "description": "Engineering manager. Small PRs, calm on-call."}),
        post(1, link_text, facets=facets),
        root,
        post(3, "1/ Every alert must be actionable. If the answer is “wait and see”, it is not an alert.", reply={"root": ref, "parent": ref}),
        post(4, "@sam.bsky.social agreed, the setup script is the real onboarding doc. Ours takes forty minutes.", reply={"root": other, "parent": other}),
        post(5, "", embed={"$type": "app.bsky.embed.images", "images": [{"alt": "A whiteboard full of arrows"}]}),
        post(6, CROSS_POSTED),
        post(7, tag_text, facets=[tag]),
        post(8, "Monday. ☕"),
        post(9, "This is the best argument for written decisions I have read this year. Bookmark it.",
             embed={"$type": "app.bsky.embed.record", "record": other}),
    ]  # fmt: skip
    for i, subject in enumerate((other, ref)):
        rkey, created = at(10 + i)
        records.append(
            (
                "app.bsky.feed.repost",
                rkey,
                {"$type": "app.bsky.feed.repost", "subject": subject, "createdAt": created},
            )
        )
        rkey, created = at(12 + i)
        records.append(
            (
                "app.bsky.feed.like",
                rkey,
                {"$type": "app.bsky.feed.like", "subject": subject, "createdAt": created},
            )
        )
    rkey, created = at(14)
    records.append(
        (
            "app.bsky.graph.follow",
            rkey,
            {"$type": "app.bsky.graph.follow", "subject": OTHER_DID, "createdAt": created},
        )
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "repo.car").write_bytes(repo_car(BSKY_DID, records))


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    return buf.getvalue().encode("utf-8")


def write_reddit(out: Path) -> None:
    """posts.csv (5: 1 too short) + comments.csv (4: skipped unless --include-replies; then 1 deleted) -> 4 posts
    (7 with comments), beside files that hold no writing (subscriptions, votes)."""
    base = "https://www.reddit.com/r/{0}/comments/{1}/{2}/"
    posts = [
        ["1f3k9qa", base.format("ExperiencedDevs", "1f3k9qa", "how_we_run_code_review"), "2025-08-02 07:41:09 UTC", "", "ExperiencedDevs", "0",
         "How we got code review under one working day", base.format("ExperiencedDevs", "1f3k9qa", "how_we_run_code_review"),
         "Two years ago our median PR waited four days. Now it waits six hours. What changed:\n\n* PRs under 300 lines\n* a review rota, not heroes\n* \"questions before assertions\" in every comment\n\nNone of it needed a tool."],
        ["1f7b2xc", base.format("sre", "1f7b2xc", "our_oncall_handbook"), "2025-08-19 18:02:11 UTC", "", "sre", "0",
         "Our on-call handbook, two years in: what we kept and what we deleted", "https://mayalindqvist.dev/blog/oncall-handbook", ""],
        ["1fb00kd", base.format("EngineeringManagers", "1fb00kd", "paying_for_oncall"), "2025-09-03 12:00:00 UTC", "", "EngineeringManagers", "0",
         "Anyone else paying people for their on-call weeks?", base.format("EngineeringManagers", "1fb00kd", "paying_for_oncall"), "[removed]"],
        ["1fd4e2m", base.format("ExperiencedDevs", "1fd4e2m", "meeting_free_wednesdays"), "2025-09-14 09:30:00 UTC", "", "ExperiencedDevs", "0",
         "Meeting-free Wednesdays: six months later", base.format("ExperiencedDevs", "1fd4e2m", "meeting_free_wednesdays"),
         "We blocked Wednesday afternoons & asked managers to go first.\r\n\r\nResult: fewer \"quick syncs\", more written decisions. The hard part was me."],
        ["1fe9z0p", base.format("sre", "1fe9z0p", "nice_read"), "2025-09-20 16:45:00 UTC", "", "sre", "0", "Nice read", "https://example.com/postmortems", ""],
    ]  # fmt: skip
    link = base.format("sre", "1f0aaaa", "what_is_your_alert_rule")
    comments = [
        ["kq1a2b3", link + "kq1a2b3/", "2025-08-05 10:00:00 UTC", "", "sre", "0", link, "t3_1f0aaaa",
         "Our rule: if nobody acted on an alert in a month, it goes. We deleted 40% of them and nothing broke.", ""],
        ["kq1a2b4", link + "kq1a2b4/", "2025-08-05 10:20:00 UTC", "", "sre", "0", link, "t1_kq19zz1",
         "Pay people for the pager and give them the day after a night page off. Everything else is detail.", ""],
        ["kq1a2b5", link + "kq1a2b5/", "2025-08-06 08:00:00 UTC", "", "sre", "0", link, "t1_kq1a2b3", "[deleted]", ""],
        ["kq1a2b6", link + "kq1a2b6/", "2025-08-07 08:00:00 UTC", "", "ExperiencedDevs", "0", link, "t3_1f0aaaa",
         "Small PRs get real feedback. Big ones get a thumbs up and a prayer, in my experience.", ""],
    ]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "posts.csv").write_bytes(
        _csv(["id", "permalink", "date", "ip", "subreddit", "gildings", "title", "url", "body"], posts)
    )
    (out / "comments.csv").write_bytes(
        _csv(
            ["id", "permalink", "date", "ip", "subreddit", "gildings", "link", "parent", "body", "media"],
            comments,
        )
    )
    (out / "subscribed_subreddits.csv").write_bytes(
        _csv(["subreddit"], [["sre"], ["ExperiencedDevs"], ["EngineeringManagers"]])
    )
    (out / "post_votes.csv").write_bytes(
        _csv(["id", "permalink", "direction"], [["1eaaaaa", base.format("sre", "1eaaaaa", "x"), "up"]])
    )


ARTICLE_PAGE = """<html><head><title>{title}</title><style>body {{ font-family: sans-serif; }}</style></head><body>
<img src="https://media.licdn.com/dms/image/v2/D4D12AQH{n}/article-cover_image-shrink_720_1280/0/1700000000000" />
<h1><a href="https://www.linkedin.com/pulse/{slug}-maya-lindqvist-{n}c">{title}</a></h1>
<p class="created">Created on {created}</p>
{published}<div>{body}</div>
</body></html>"""
ARTICLES = [
    ("the-two-day-rule", "The two-day rule", "2025-01-10 08:12", "2025-01-12 09:00",
     "<p>Code review is not a gate. It is a conversation.</p><p>Two years ago our median pull request waited four days for a first comment. Today it waits six hours.</p><h3>What changed</h3><ul><li>Small pull requests</li><li>Reviews within one working day</li><li>Questions before assertions</li></ul><p>None of it needed a tool. All of it needed a habit.</p>"),
    ("calm-on-call", "Calm on-call, one year later", "2025-03-02 19:40", "2025-03-04 07:30",
     "<p>Nobody should dread their on-call week.</p><p>We deleted every alert nobody acted on, paid people for the pager, and gave the day after a night page off.</p><blockquote>A runbook that nobody has tried is a hope, not a runbook.</blockquote><p>What would make your on-call week better tomorrow?</p>"),
    ("hiring-notes", "Hiring notes (draft)", "2025-04-01 21:05", None, "<p>Draft: we share interview questions in advance. More soon.</p>"),
    ("writing-is-the-job", "Writing is the job", "2025-05-18 06:55", "2025-05-20 08:00",
     "<p>Our team spans four time zones and one shared document.</p><p>If a decision is not written down, it did not happen &amp; it will be made again next month.<br>So we write: short, dated, with the question we answered.</p>"),
]  # fmt: skip


def write_linkedin_complete(out: Path, shares_csv: bytes, profile_csv: bytes) -> None:
    """Complete_LinkedInDataExport layout: Shares.csv (3 rows, 1 reshare) + Articles/Articles/ (3 published,
    1 draft) -> 5 posts, the articles with their titles."""
    articles = out / "Articles" / "Articles"
    articles.mkdir(parents=True, exist_ok=True)
    for n, (slug, title, created, published, body) in enumerate(ARTICLES, start=1):
        stamp = f'<p class="published">Published on {published}</p>\n' if published else ""
        page = ARTICLE_PAGE.format(title=title, n=n, slug=slug, created=created, published=stamp, body=body)
        (articles / f"{slug}-maya-lindqvist-{n}c.html").write_text(page, encoding="utf-8")
    (out / "Shares.csv").write_bytes(shares_csv)
    (out / "Profile.csv").write_bytes(profile_csv)


LONG_POSTS = [
    ("1850000000000000001", "Wed Sep 03 07:00:00 +0000 2025",
     "Things I got wrong in my first year as a manager, all in one post because threads get lost.\n\n"
     "1. I thought my calendar was my job. It is not: the team's calendar is.\n"
     "2. I answered questions my team could have answered better. Now I ask \"what do you think?\" first.\n"
     "3. I gave feedback once a quarter. Now it is weekly, small, and specific.\n"
     "4. I hid bad news to protect people. It only made the surprise worse.\n\n"
     "What would you add? Full notes: https://t.co/Lng1Note"),
    ("1850000000000000002", "Fri Sep 12 16:30:00 +0000 2025",
     "Our on-call rota, explained for the new folks who asked this week. Everyone on the team is on it, "
     "managers too. A week is Monday to Monday, hand-over at 10:00 with coffee. Pages at night mean the next "
     "day off, no discussion. Every alert has a runbook link or it gets deleted. And twice a year we rehearse "
     "the worst incident we can imagine on a quiet Tuesday, so the real one feels familiar. 🧯"),
]  # fmt: skip


def write_x_long_posts(out: Path, tweet, ytd, account) -> None:
    """tweets.js (4: 2 long posts cut with "…", 1 short post, 1 retweet) + note-tweet.js (3 notes, one of a
    deleted tweet) -> 3 posts, the 2 long ones restored in full."""
    tweets, notes = [], []
    for id_str, created, text in LONG_POSTS:
        cut = text[:270].rsplit(" ", 1)[0] + "…"
        if "https://t.co/" in text:
            cut += " https://t.co/Lng1Self"
        tweets.append(tweet(id_str, cut, created))
        note_created = datetime.strptime(created, "%a %b %d %H:%M:%S %z %Y") - timedelta(seconds=1)
        urls = (
            [
                {
                    "shortUrl": "https://t.co/Lng1Note",
                    "expandedUrl": "https://mayalindqvist.dev/notes/first-year",
                    "displayUrl": "mayalindqvist.dev/notes/first-…",
                }
            ]
            if "t.co" in text
            else []
        )
        notes.append({"noteTweet": {"noteTweetId": str(int(id_str) - 7), "updatedAt": note_created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                                    "lifecycle": {"value": "1", "name": "Live"}, "createdAt": note_created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                                    "core": {"styletags": [], "urls": urls, "text": text, "mentions": [], "cashtags": [], "hashtags": []}}})  # fmt: skip
    deleted = "A long post I deleted later: " + "writing things down is how a remote team remembers. " * 6
    notes.append(
        {
            "noteTweet": {
                "noteTweetId": "1849999999999999990",
                "createdAt": "2025-09-01T10:00:00.000Z",
                "core": {"text": deleted, "urls": []},
            }
        }
    )
    tweets.append(
        tweet(
            "1850000000000000003",
            "Small PRs get reviews. Big PRs get a thumbs up &amp; a prayer. 🙏",
            "Mon Sep 15 07:02:11 +0000 2025",
        )
    )
    tweets.append(
        tweet(
            "1850000000000000004",
            "RT @kelsey_builds: The best runbook is the one someone tried on a quiet Tuesday.",
            "Tue Sep 16 13:00:00 +0000 2025",
        )
    )
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "account.js").write_text(ytd("account", 0, account), encoding="utf-8")
    (data / "tweets.js").write_text(ytd("tweets", 0, tweets), encoding="utf-8")
    (data / "note-tweet.js").write_text(ytd("note_tweet", 0, notes), encoding="utf-8")
