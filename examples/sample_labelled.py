"""Invented data for the classify and domain-adapt recipes: product reviews with sentiment labels,
phishing/legitimate emails, and a folder of workshop notes (Markdown, text, HTML and a PDF).
Everything comes from fixed pools and fixed seeds, so `make_samples.py` writes the same bytes each time."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

PRODUCTS = ["kettle", "desk lamp", "backpack", "pair of headphones", "coffee grinder", "rain jacket",
            "bike light", "phone case", "blender", "office chair", "water bottle", "keyboard"]  # fmt: skip
REVIEW_OPENERS = ["Bought this {p} last month.", "I use the {p} every day.", "Got the {p} as a gift.",
                  "Ordered the {p} for my new flat.", "This {p} replaced my old one.",
                  "Second {p} from this brand."]  # fmt: skip
REVIEW_BODIES = {
    "positive": ["Works perfectly and feels solid.", "Best purchase I made this year.",
                 "Arrived early and the quality is excellent.", "Love it, would buy again without thinking.",
                 "Quiet, fast and easy to clean.", "Great value, it exceeded what I expected.",
                 "The battery lasts for days, brilliant.", "Five stars, my whole family loves it."],
    "negative": ["Broke after two weeks.", "Stopped working on the third day, very disappointed.",
                 "Cheap plastic that cracked straight away.", "Would not buy again, a waste of money.",
                 "Support never answered my emails.", "Loud, slow and it smells of burning.",
                 "The battery died within an hour, useless.", "Returned it, the worst purchase this year."],
    "neutral": ["It does the job, nothing special.", "Average quality for the price.",
                "Fine, although the colour differs from the photo.", "Neither great nor bad, just okay.",
                "Does what the box says, no more.", "Works as described, the manual is short.",
                "Delivery took the usual five days.", "About what I expected for an ordinary model."],
}  # fmt: skip

PHISHING = [
    "Your account has been suspended. Verify your password within 24 hours at {link} or lose access.",
    "URGENT: unusual sign-in detected. Confirm your card number here: {link}",
    "You have won a $500 gift card! Claim it now at {link} before it expires tonight.",
    "Your parcel could not be delivered. Pay the 1.99 customs fee at {link} to release it.",
    "Final notice: your mailbox is full. Log in at {link} to keep receiving email.",
    "The CEO needs you to buy six gift cards today and send the codes by reply. Keep this private.",
    "Tax refund pending: enter your bank details at {link} to receive 842.50.",
    "Security alert: your payment failed. Update your billing information at {link} immediately.",
]
PHISHING_LINKS = ["http://secure-login.examp1e-bank.com/verify", "http://account-check.example-support.top",
                  "http://paypa1-resolve.example.net/login", "http://bit.example/claim-now",
                  "http://mail-upgrade.example.xyz/keep"]  # fmt: skip
LEGITIMATE = [
    "Hi team, the notes from Tuesday's planning meeting are in the shared folder. See you Thursday.",
    "Your order #{n} has shipped and should arrive on Friday. Track it from your account page.",
    "Invoice {n} for October is attached. Payment is due within 30 days as usual. Thanks!",
    "Reminder: the office is closed on Monday for the public holiday.",
    "Thanks for your question about the workshop. The room is booked from 10 to 12, coffee included.",
    "This month's newsletter: three new recipes, a library update and the book club's next pick.",
    "Could you review my pull request before lunch? It only touches the logging module.",
    "Your dentist appointment is confirmed for the 14th at 09:30. Reply to this email to reschedule.",
]
EMAIL_GREETINGS = ["Dear customer,", "Hello,", "Hi,", "Good morning,", "Dear user,", "Hey,"]
EMAIL_SIGNOFFS = ["Best regards", "Thanks", "Kind regards", "Cheers", "Sincerely", "Regards"]


def labelled_reviews(per_class: int = 50, seed: int = 20261201) -> list[dict]:
    """`per_class` reviews of each sentiment, each an opener and two sentences of its class."""
    rng = random.Random(seed)
    rows, seen = [], set()
    for label, bodies in REVIEW_BODIES.items():
        while sum(r["label"] == label for r in rows) < per_class:
            a, b = rng.sample(bodies, 2)
            text = f"{rng.choice(REVIEW_OPENERS).format(p=rng.choice(PRODUCTS))} {a} {b}"
            if text not in seen:
                seen.add(text)
                rows.append({"text": text, "label": label})
    rng.shuffle(rows)
    return rows


def labelled_emails(per_class: int = 50, seed: int = 20261202) -> list[dict]:
    """`per_class` phishing and legitimate emails: a greeting, one body, a sign-off."""
    rng = random.Random(seed)
    rows, seen = [], set()
    for label, bodies in (("phishing", PHISHING), ("legitimate", LEGITIMATE)):
        while sum(r["label"] == label for r in rows) < per_class:
            body = rng.choice(bodies).format(link=rng.choice(PHISHING_LINKS), n=rng.randint(1000, 9999))
            text = f"{rng.choice(EMAIL_GREETINGS)} {body} {rng.choice(EMAIL_SIGNOFFS)}."
            if text not in seen:
                seen.add(text)
                rows.append({"text": text, "label": label})
    rng.shuffle(rows)
    return rows


def write_reviews_csv(path: Path) -> int:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["text", "label"])
    rows = labelled_reviews()
    writer.writerows([r["text"], r["label"]] for r in rows)
    path.write_bytes(out.getvalue().encode("utf-8"))
    return len(rows)


def write_emails_jsonl(path: Path) -> int:
    rows = labelled_emails()
    path.write_bytes("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))
    return len(rows)


# Workshop notes of an invented cargo-bike repair shop: facts a base model cannot know.
PARTS = {
    "Brakeline hub": ("rear hub", "a 4 mm hex key", "every 1,800 km", "grey Tallgrease 7"),
    "Keelson fork": ("front fork", "the orange torque wrench at 9 Nm", "every 2,400 km", "blue Fjordwax"),
    "Pallet rack": ("cargo rack", "two 13 mm spanners", "every 3,000 km", "no grease at all"),
    "Drift chain": ("drive chain", "the KT-4 chain tool", "every 900 km", "dry Fjordwax"),
    "Harbour stand": ("centre stand", "a 6 mm hex key", "every 5,000 km", "grey Tallgrease 7"),
    "Tern bearing": ("headset bearing", "the bearing press in drawer 3", "every 4,000 km", "blue Fjordwax"),
    "Skerry brake": ("front disc brake", "a T25 Torx key", "every 1,200 km", "no grease at all"),
    "Lantern loom": ("lighting harness", "the green crimping pliers", "every 6,000 km", "contact spray"),
}
NOTE_SENTENCES = [
    "At the Lindqvist workshop the {part} is the {what} on every Otter cargo bike.",
    "To service the {part}, loosen it with {tool} and nothing else.",
    "Check the {part} {every}; riders who carry children should halve that interval.",
    "Lubricate the {part} with {grease}, which Ingrid orders from the harbour supplier.",
    "A worn {part} makes a ticking sound on the first turn after the bike has stood overnight.",
    "Write every {part} service in the blue ledger beside the till, with the frame number.",
    "Ingrid teaches every new mechanic the {part} first, because most Otter repairs start there.",
    "Spare parts for the {part} are kept on the second shelf, labelled in red pen.",
    "If the {part} fails on the road, the rider may call the workshop's night line for a tow.",
    "Never sell a used {part}; the workshop scraps them in the yellow bin behind the door.",
]


def note_paragraphs(part: str) -> list[str]:
    what, tool, every, grease = PARTS[part]
    return [s.format(part=part, what=what, tool=tool, every=every, grease=grease) for s in NOTE_SENTENCES]


def minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with `lines` of Helvetica text (ASCII only), with a correct xref table."""
    text = "BT /F1 11 Tf 50 780 Td 14 TL " + " ".join(
        "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '" for line in lines
    ) + " ET"  # fmt: skip
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text.encode("ascii")),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def write_domain_notes(folder: Path) -> int:
    """One document per part: Markdown, text and HTML files, and the last one as a PDF."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    names = list(PARTS)
    for i, part in enumerate(names):
        paras = note_paragraphs(part)
        stem = part.lower().replace(" ", "-")
        if i == len(names) - 1:
            (folder / f"{stem}.pdf").write_bytes(minimal_pdf(paras))
        elif i % 3 == 0:
            body = "\n\n".join(paras)
            (folder / f"{stem}.md").write_bytes(f"# {part}\n\n{body}\n".encode())
        elif i % 3 == 1:
            (folder / f"{stem}.txt").write_bytes(("\n\n".join(paras) + "\n").encode())
        else:
            html = "".join(f"<p>{p}</p>\n" for p in paras)
            page = f"<html><head><title>{part}</title></head><body><h1>{part}</h1>\n{html}</body></html>\n"
            (folder / f"{stem}.html").write_bytes(page.encode())
    return len(names)
