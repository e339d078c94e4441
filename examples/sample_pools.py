"""Phrase pools for the invented persona of the sample exports: Maya Lindqvist, engineering manager.

Her voice: a one-line hook, short paragraphs, "→" lists, a closing question, two hashtags, rare emoji.
"""

TOPICS = {
    "code review": {
        "hooks": [
            "Code review is not a gate. It is a conversation.",
            "The best code review comment I ever got was a question.",
            "We cut our review time in half without reviewing less.",
        ],
        "body": [
            "Small pull requests get real feedback. Big ones get a thumbs up and a prayer.",
            "I ask reviewers to say what they would do, not only what is wrong.",
            "A review that arrives three days later is a review of code nobody remembers writing.",
            "We started pairing on the first review for every new hire, and the tone of the whole team changed.",
            "Nitpicks go in a separate comment, marked as optional, so the real point does not drown.",
            "The author writes the context in the description. The reviewer should never have to guess why.",
        ],
        "list": [
            "Keep it under 300 lines",
            "Review within one working day",
            "Ask before you assert",
            "Praise the good parts out loud",
        ],
        "questions": [
            "What is the one review habit you would never give up?",
            "How long does a pull request wait on your team?",
            "Who taught you to review code well?",
        ],
        "tags": ["#CodeReview", "#EngineeringCulture", "#SoftwareEngineering"],
    },
    "onboarding": {
        "hooks": [
            "A new engineer's first week tells them everything about your team.",
            "Onboarding is the most honest documentation test there is.",
            "We asked our last five hires what confused them most.",
        ],
        "body": [
            "Nobody remembers the welcome slides. Everybody remembers shipping something small on day two.",
            "Every question a new hire asks is a bug report against our docs.",
            "We give each newcomer a buddy who is not their manager, so there is always a safe person to ask.",
            "The setup script used to take a full day. Now it takes forty minutes, and that alone changed the mood.",
            "I write a short letter to every new hire: what I expect in month one, and what I do not.",
            "The first pull request should be tiny and real, never a fake exercise.",
        ],
        "list": [
            "A laptop that works on day one",
            "A first task that ships",
            "A buddy, not a manual",
            "A 30-day check-in on the calendar",
        ],
        "questions": [
            "What made your best first week so good?",
            "What is the first task you give a new engineer?",
            "How long until a new hire ships on your team?",
        ],
        "tags": ["#Onboarding", "#EngineeringManagement", "#Hiring"],
    },
    "remote work": {
        "hooks": [
            "Remote work did not break our culture. It exposed it.",
            "Our team spans four time zones and one shared document.",
            "Writing is the real remote work skill.",
        ],
        "body": [
            'We call it the "shoulder tap test": if you cannot tap someone on the shoulder, you learn to write things down properly.',
            "We moved status updates into a short written note on Mondays and got an hour of meetings back.",
            "Overlap hours matter more than office days. Two good hours together beat eight scattered ones.",
            "Cameras optional, agendas mandatory. That rule did more for our meetings than any tool.",
            "I meet everyone in person twice a year, and those days are for people, not for slides.",
            "Async does not mean slow. It means nobody waits for the one person who knows.",
        ],
        "list": [
            "Decisions live in writing",
            "Meetings have an agenda or they do not happen",
            "Core hours are protected",
            "Time zones rotate the pain",
        ],
        "questions": [
            "What is the one remote habit your team swears by?",
            "How many hours of overlap does your team need?",
            "Do you miss the office, honestly?",
        ],
        "tags": ["#RemoteWork", "#AsyncFirst", "#FutureOfWork"],
    },
    "on-call": {
        "hooks": [
            "Nobody should dread their on-call week.",
            "Our pager went off 41 times last quarter. This quarter, 9.",
            "On-call tells you what your system really is.",
        ],
        "body": [
            "Every alert must be actionable. If the answer is wait and see, it is not an alert.",
            "We pay for on-call, and we give the day after a night page off. No debate.",
            "The person on call owns the backlog of noisy alerts for that week and gets time to fix them.",
            "A runbook that nobody has tried is a hope, not a runbook.",
            "Handover is a fifteen-minute call, with notes, every Monday at ten.",
            "We track sleep-interrupting pages as a team metric, next to uptime.",
        ],
        "list": [
            "Delete alerts nobody acts on",
            "Pay people for the pager",
            "Test the runbook on a quiet day",
            "Review every night page",
        ],
        "questions": [
            "What would make your on-call week better tomorrow?",
            "How many pages a week is too many?",
            "Does your team get paid for on-call?",
        ],
        "tags": ["#OnCall", "#SRE", "#DevOps"],
    },
    "hiring": {
        "hooks": [
            "We stopped asking candidates to reverse a linked list.",
            "Hiring is the most important code we never commit.",
            "Every candidate deserves an answer within a week.",
        ],
        "body": [
            "Our technical interview is now a code review of a small real change. Candidates say it is the first interview that felt like work.",
            "We share the questions in advance. The signal got better, not worse.",
            "A rejection with two lines of honest feedback costs us ten minutes and earns real respect.",
            "We hire for the ability to explain a decision, not to recite an algorithm.",
            "The panel writes notes before they talk to each other, so the loudest voice does not decide.",
            "Job posts with a salary range get more applicants and better ones.",
        ],
        "list": [
            "Publish the salary range",
            "Send the questions ahead",
            "Answer every candidate",
            "Write notes before the debrief",
        ],
        "questions": [
            "What is the best interview you have ever had?",
            "Should interview questions be shared in advance?",
            "What signal do you trust most in a candidate?",
        ],
        "tags": ["#Hiring", "#TechRecruiting", "#EngineeringManagement"],
    },
    "technical debt": {
        "hooks": [
            "Technical debt is not a moral failure.",
            "We gave technical debt a budget, and it stopped being a fight.",
            "The word refactor makes product managers nervous. So we stopped using it.",
        ],
        "body": [
            "Twenty percent of every sprint goes to making the next change easier. It is not negotiable and it is not hidden.",
            "Debt you choose on purpose is a loan. Debt you do not notice is a leak.",
            "We write down every shortcut with the date and the reason, so future us can judge it fairly.",
            "Ask how long the next feature in this area will take. That number is the real cost of the debt.",
            "The oldest code is rarely the worst. The code nobody owns is.",
            "Paying debt is easiest right after shipping, while the context is still warm.",
        ],
        "list": ["Name it", "Date it", "Price it in days", "Pay a little every sprint"],
        "questions": [
            "How does your team decide which debt to pay first?",
            "Does your roadmap have room for cleanup?",
            "What is the oldest shortcut still running in your system?",
        ],
        "tags": ["#TechDebt", "#SoftwareEngineering", "#ProductManagement"],
    },
    "one-on-ones": {
        "hooks": [
            "A one-on-one is their meeting, not mine.",
            "I cancelled a one-on-one once. I still regret it.",
            "The best one-on-ones start with a boring question.",
        ],
        "body": [
            "Status updates belong in writing. One-on-ones are for everything that does not fit in a ticket.",
            "I keep a shared doc with each person. They write the agenda, I bring the coffee.",
            '"How are you, really?" works better on a walk than across a desk.',
            "Once a quarter we skip the usual topics and talk only about where they want to be in two years.",
            "If someone says nothing to discuss three weeks in a row, the problem is the meeting, not the person.",
            "Feedback in a one-on-one should never be the first time someone hears it.",
        ],
        "list": [
            "Their agenda first",
            "Career talk every quarter",
            "Notes both of you can see",
            "Never cancel, only move",
        ],
        "questions": [
            "What is the best question a manager ever asked you?",
            "How often do you meet with your manager?",
            "Walk or desk for one-on-ones?",
        ],
        "tags": ["#Leadership", "#OneOnOne", "#EngineeringManagement"],
    },
    "estimates": {
        "hooks": [
            "Estimates are not promises. Say it louder for the roadmap.",
            "We stopped estimating in days.",
            "Every estimate I gave in my first year was wrong by a factor of two.",
        ],
        "body": [
            "A range tells the truth. A single number tells a story someone will hold you to.",
            "We slice work until each piece fits in two days, then we count pieces instead of guessing hours.",
            "The unknowns go first. An estimate with a big unknown in the middle is just a wish.",
            "When a date is fixed, scope is the only honest lever left.",
            "We review last quarter's estimates against reality every retro. Nobody gets blamed, everybody gets better.",
            "Product and engineering estimate together, so the surprises are shared too.",
        ],
        "list": [
            "Give ranges, not points",
            "Slice small",
            "Attack the unknowns first",
            "Compare with reality, kindly",
        ],
        "questions": [
            "How does your team estimate work today?",
            "Ranges or single numbers?",
            "When did an estimate last surprise you?",
        ],
        "tags": ["#Agile", "#ProjectManagement", "#SoftwareEngineering"],
    },
    "documentation": {
        "hooks": [
            "Documentation is a gift to the person you will be in six months.",
            "Our README used to lie. Now it runs in CI.",
            "If it is not written down, it is a rumour.",
        ],
        "body": [
            "We test the getting-started guide on every merge. If a step breaks, the build breaks.",
            "Decision records are short: the context, the options, what we chose and why. Half a page.",
            "The best docs answer the question someone is asking right now, not every question at once.",
            "A diagram drawn by hand in five minutes beats the perfect one nobody updates.",
            "Every incident ends with one doc change. That rule built our runbooks for us.",
            "Docs live next to the code, reviewed in the same pull request.",
        ],
        "list": [
            "Test the quickstart",
            "Write the decision, not only the result",
            "Keep it next to the code",
            "Delete what is stale",
        ],
        "questions": [
            "Which doc on your team is the most trusted?",
            "Do your docs get reviewed like code?",
            "Where do your decisions live?",
        ],
        "tags": ["#Documentation", "#DevEx", "#SoftwareEngineering"],
    },
    "incidents": {
        "hooks": [
            "The incident was my fault. The postmortem was blameless anyway.",
            "Our worst outage taught us more than our best launch.",
            "Incidents are expensive lessons. Do not waste them.",
        ],
        "body": [
            "Blameless does not mean nobody is responsible. It means we fix systems instead of hunting people.",
            "The timeline is written within 48 hours, while memories are still sharp.",
            "One incident commander, one scribe, one channel. Everything else is noise.",
            "We read every postmortem out loud in the team meeting. It takes ten minutes and it spreads the lesson.",
            "The follow-up actions get owners and dates, or they do not get written.",
            "Customers forgive an outage. They do not forgive silence during one.",
        ],
        "list": [
            "One commander",
            "A public status update every 30 minutes",
            "A timeline within 48 hours",
            "Actions with owners",
        ],
        "questions": [
            "What did your last incident teach your team?",
            "Are your postmortems really blameless?",
            "Who talks to customers during an outage at your company?",
        ],
        "tags": ["#IncidentResponse", "#SRE", "#Postmortem"],
    },
    "feedback": {
        "hooks": [
            "Feedback delayed is feedback diluted.",
            "I asked my team for anonymous feedback on my management. It stung.",
            "Praise in public is easy. Specific praise is rare.",
        ],
        "body": [
            "Say what happened, what it caused, and what you would like next time. Three sentences, no sandwich.",
            "The feedback that helped me most was about one meeting, not about my personality.",
            "If the review cycle is the first time someone hears a concern, the manager failed, not the report.",
            "I end every retro by asking what I should stop doing. Someone always has an answer.",
            "Specific praise teaches. Good job teaches nothing.",
            "Feedback goes both ways or it goes nowhere.",
        ],
        "list": ["Soon", "Specific", "Private for criticism", "Public for praise"],
        "questions": [
            "What is the most useful feedback you have ever received?",
            "How do you ask your team for feedback?",
            "Do you give feedback the same week?",
        ],
        "tags": ["#Feedback", "#Leadership", "#Management"],
    },
    "meetings": {
        "hooks": [
            "We deleted every recurring meeting for two weeks.",
            "A meeting without a decision is a podcast with worse audio.",
            "My calendar was full. My team was blocked. Those were related.",
        ],
        "body": [
            "After the two weeks, we brought back only the meetings somebody missed. It was three of eleven.",
            "Every invite now needs a one-line goal. No goal, no meeting.",
            "Twenty-five minutes by default. The five minutes back add up to a whole afternoon each week.",
            "Notes go out within the hour, with decisions at the top.",
            "Wednesday afternoons are meeting-free. People guard them like a holiday.",
            "If you have nothing to add, leaving early is a compliment, not an insult.",
        ],
        "list": [
            "A goal in every invite",
            "25 minutes by default",
            "Decisions at the top of the notes",
            "One meeting-free afternoon",
        ],
        "questions": [
            "Which recurring meeting would you delete first?",
            "Does your team have meeting-free time?",
            "How long is your default meeting?",
        ],
        "tags": ["#Productivity", "#Meetings", "#RemoteWork"],
    },
    "learning": {
        "hooks": [
            "I learned Rust this year. Slowly, badly, and happily.",
            "Learning time that is not on the calendar does not exist.",
            "The engineers I admire most are still beginners at something.",
        ],
        "body": [
            "Friday mornings are for learning on our team. Not a perk, a plan.",
            "Teaching is the fastest way to find out what you do not understand.",
            "I keep a list of things I got wrong this month. It is longer than I would like and shorter than last year.",
            "Reading other teams' code is an underrated course, and it is free.",
            "A lunch talk by a junior engineer is often the best one of the month.",
            "Conferences are great, but a book club of four people changed more on our team.",
        ],
        "list": [
            "Protect the time",
            "Teach what you learn",
            "Read code you did not write",
            "Write down your mistakes",
        ],
        "questions": [
            "What are you learning right now?",
            "Does your team have protected learning time?",
            "What is the last thing you taught someone?",
        ],
        "tags": ["#Learning", "#CareerGrowth", "#Rust"],
    },
    "burnout": {
        "hooks": [
            "I burned out in 2019. I did not notice until I stopped enjoying bike rides.",
            "Burnout is a system problem wearing a personal costume.",
            "Rest is part of the job description.",
        ],
        "body": [
            "The warning signs were all there: short answers, late nights, no opinions in meetings.",
            "Heroics are a sign of a broken plan, not of a great engineer.",
            "I now ask about workload in every one-on-one, before anything else.",
            "Holidays with a laptop are not holidays. We set the out-of-office and we mean it.",
            "The team that never says no is not productive. It is borrowing from next year.",
            "Sustainable pace is a feature. Ship it.",
        ],
        "list": [
            "Watch the quiet ones",
            "Ban the heroics",
            "Holidays without laptops",
            "Ask about workload first",
        ],
        "questions": [
            "How do you notice burnout on your team?",
            "When did you last take a real holiday?",
            "What does sustainable pace mean to you?",
        ],
        "tags": ["#MentalHealth", "#Burnout", "#Leadership"],
    },
    "cycling": {
        "hooks": [
            "My commute is 14 km by bike. It is my best thinking time.",
            "Rain, 6 degrees, headwind. Still the best part of my day.",
            "Every hard problem I solved this year, I solved on the bike.",
        ],
        "body": [
            "No slides, no messages, just the road and one question in my head.",
            "I arrive at the office with the day already sorted, and a little muddy.",
            "Our team started a Friday ride. Half of the best product ideas came from the coffee stop.",
            "Fixing a flat in the rain teaches patience better than any leadership course.",
            "The bike taught me that consistency beats intensity. So does management.",
            "Some days the ride home is the only quiet hour I get.",
        ],
        "list": [
            "Leave the phone in the bag",
            "One question per ride",
            "Coffee at the halfway point",
            "Ride in any weather",
        ],
        "questions": [
            "Where do you do your best thinking?",
            "Does anyone else solve bugs on the commute?",
            "What is your version of the bike ride?",
        ],
        "tags": ["#Cycling", "#WorkLifeBalance", "#Thinking"],
    },
}

CLOSERS = ["Curious:", "Your turn:", "Honest question:", "Over to you:"]
EMOJI = ["☕", "🚲", "🙂", "🚀", "📚", "🌧️"]
