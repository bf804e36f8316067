"""Rules about how callees answer, beyond any template's phrase list.

Phrase lists say what an intent sounds like; these rules say how people phrase answers in
general, so the matcher does not depend on a template listing every variant:

- **Self-correction**: the answer after "I mean", "sorry, I meant", "no wait" is the answer
  ("no I mean yes I can come" is a yes). ``after_correction``.
- **Negated negatives**: "I'm not saying no", "I won't miss it", "not unhappy" are yeses.
- **Hedges**: "I can't say yes right now", "I'll have to see", "maybe" are neither yes nor no:
  no positive intent is taken from a hedged answer (the engine re-asks). ``hedged``.
- **Polite refusals**: "not interested", "I'm not able to attend", "I don't need it anymore",
  "I'll pass" are a no.
- **Counter-offers**: "not that day but maybe friday", "earlier if possible", "could we do
  thursday afternoon instead" ask for another time. ``counter_offer``; ``slots`` extracts the
  day and time named.
- **Opt-outs in general form**: stop/quit/cease + calling, never/don't + contact + again,
  remove/take/delete + me/my number + off/from + list. ``opt_out_pattern``.

``rewrite`` turns the first four into the plain words the phrase lists use ("yes", "no",
"can not", a neutral ``hedge`` token); it works on ``fold``-ed text (contractions expanded).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from outdial.domain.utterance import fold

HEDGE_TOKEN = "hedgeword"  # noqa: S105 - a word, not a secret
_BARE = {
    "dont": "do not", "cant": "can not", "wont": "will not", "didnt": "did not",
    "doesnt": "does not", "isnt": "is not", "im": "i am", "ive": "i have",
    "thats": "that is", "wouldnt": "would not", "couldnt": "could not",
    "wasnt": "was not", "arent": "are not", "havent": "have not", "youre": "you are",
}  # fmt: skip
_BARE_RE = re.compile(r"\b(" + "|".join(_BARE) + r")\b")
# "ill"/"id" are "I'll"/"I'd" only before a verb: "I feel ill" keeps its word.
_BARE_BEFORE_VERB_RE = re.compile(
    r"\b(ill|id)\b(?= (?:be|pay|come|do|make|call|send|get|have|take|try|see|attend|settle|"
    r"sort|transfer|go|give|need|like|love|prefer|rather|say|think|check|miss|bring|look|"
    r"let|put|cancel)\b)"
)
_FILLER_RE = re.compile(r"\b(um+|uh+|uhm|er+|erm|hmm+|mm+|ah+|oh)\b[,.]?\s*")
# Affirmative grunts are a yes, not a hesitation ("mm-hm", "uh huh", "mhm").
_GRUNT_YES_RE = re.compile(r"\b(?:m+ ?h+m+|uh ?huh)\b")


def surface(text: str) -> str:
    """``text`` folded (lowercase, contractions expanded), bare contractions expanded,
    hesitations removed; punctuation kept (clauses matter to the rules)."""
    out = _BARE_RE.sub(lambda m: _BARE[m.group(1)], fold(text))
    out = _BARE_BEFORE_VERB_RE.sub(lambda m: "i will" if m.group(1) == "ill" else "i would", out)
    out = _GRUNT_YES_RE.sub("yes", out)
    return re.sub(r"\s+", " ", _FILLER_RE.sub("", out)).strip()


# --- self-correction ---

_CORRECTION = re.compile(
    r"\b(?:i mean|i meant|sorry,? i meant|no wait|wait,? no|wait|or rather|let me rephrase|"
    r"scratch that|correction)\b[,.!]?\s*"
)


def after_correction(text: str) -> str | None:
    """The words after the last self-correction marker, or ``None`` when there is none or
    nothing follows it."""
    s = surface(text)
    found = list(_CORRECTION.finditer(s))
    if not found:
        return None
    tail = s[found[-1].end() :].strip(" ,.")
    return tail or None


_LEADING_NO = re.compile(r"^(?:(?:no|nah|nope)\b[,.!]?\s*)+(?=\S+\s+\S+\s+\S+)")


def after_leading_no(text: str) -> str | None:
    """What follows a leading "no" particle when a clause of three or more words follows."""
    s = surface(text)
    m = _LEADING_NO.match(s)
    return s[m.end() :] if m else None


# --- rewriting to plain words ---

_SCORE_WORDS = {
    w: i
    for i, w in enumerate(
        ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    )
} | {"nought": 0}


def _score(m: re.Match[str]) -> str:
    # A grade in the survey's words: 0-4 of ten is bad, 5-6 middling, 7-10 good.
    given, scale = m.group(1), m.group(2)
    value = int(given) if given.isdigit() else _SCORE_WORDS[given]
    tenths = value * (2 if scale in ("five", "5") else 1)
    if tenths > 10:
        return m.group(0)
    return "bad" if tenths <= 4 else "average" if tenths <= 6 else "good"


_NEG = r"(?:not|never)"
_WILL_NOT = r"(?:will not|would not|am not going to|not going to|never|shall not|won't)"
_RULES: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = tuple(
    (re.compile(p), r)
    for p, r in (
        # negated negatives
        (r"\b(?:i am )?not saying no\b", "yes"),
        (r"\b(?:would|could|will|can|did|do) not (?:say|be saying) no\b", "yes"),
        (r"\bnot (?:a )?no\b", "yes"),
        (rf"\b{_WILL_NOT} (?:miss|forget)(?: it| that| this| the \w+)?\b", "yes"),
        (rf"\b{_WILL_NOT} be late(?: with it| with that| with the \w+)?\b", "yes"),
        (r"\bdo not see why not\b", "yes"),
        (r"\bdo not see (?:a|any) problem\b", "yes"),
        (rf"\b{_NEG} (?:unhappy|dissatisfied|unsatisfied|disappointed|displeased)(?: at all)?\b",
         "yes"),
        (r"\bnothing bad to say\b", "yes"),
        (r"\bcould not have asked for (?:better|more)\b", "yes"),
        # hedges: neither a yes nor a no
        (r"\bcan not (?:say|tell you|promise|confirm) (?:yes|for sure|for certain|that)\b",
         HEDGE_TOKEN),
        # evaluations in other words than the phrase lists
        (r"\bnot bad,? not (?:great|good)\b|\bnot great,? not (?:bad|terrible)\b", "so so"),
        (r"\b(?:was |were )?not bad at all\b", "good"),
        (r"\b(?:do not|did not) (?:really )?have an opinion\b", "no opinion"),
        (r"\b(?:did not|never|could not|would not) (?:fix|show up|turn up|work|help|solve)\w*\b",
         "bad"),
        (r"\b(?:messed|mucked|screwed) (?:it |things |everything )?up\b", "bad"),
        (r"\b(?:dreadful|appalling|shocking|rubbish|lousy|pathetic|a mess|unacceptable|"
         r"shambles|shambolic|sloppy|overcharged|a joke|a nightmare)\b", "bad"),
        # complaints told as what happened
        (r"\b(?:had to (?:chase|call|ring|phone) (?:them|you)(?: \w+){0,2}? (?:times|again)|"
         r"waited (?:over |for |more than )?(?:an hour|hours|ages|weeks)|"
         r"(?:nobody|no one|no-one) (?:called|rang|got) (?:me )?back)\b", "bad"),
        (r"\b(?:nice|lovely|superb|delighted|top notch|outstanding|terrific|pleasant|"
         r"glad|thrilled|spot on|pleased|loved|chuffed)\b", "good"),
        (r"\b(?:would|will|'d) (?:definitely |certainly |happily )?use (?:you|them|it) again\b",
         "good"),
        (r"\bcould not have gone better\b", "good"),
        # hardship and part payment, before the commitments ("unable to pay" is no promise)
        (r"\b(?:am |are |is )?(?:struggling|struggle|finding it (?:hard|difficult)|"
         r"having (?:trouble|a hard time)) to\b", "can not"),
        (r"\b(?:i |we )?(?:can|could|will|would) (?:only )?(?:pay|afford|manage) (?:only )?"
         r"(?:part|some|half|a bit|a portion|a little)\b(?: part)?(?: of (?:it|that|the \w+))?",
         "i can not pay it all"),
        (r"^(?:only|just) (?:half|part|some)(?: of it)?$", "i can not pay it all"),
        (r"\b(?:in|by) instal?ments?\b|\bpayment plan\b|\bpay (?:it )?in (?:parts|chunks|bits)\b",
         "money is tight"),
        # scores: out of ten (or five, halved), the way people grade a service
        (r"\b(?:a |about |maybe |probably )?(zero|nought|one|two|three|four|five|six|seven|eight|"
         r"nine|ten|[0-9]|10)(?: out of| outta|/) ?(ten|10|five|5)\b", _score),
        # idioms of praise and of a middling view
        (r"\b(?:can not|could not) (?:complain|fault (?:it|them|you))\b", "no complaints"),
        (r"\btop marks\b|\bgive (?:it|you|them) (?:a )?(?:ten|10)\b", "ten out of ten"),
        (r"\bexceeded (?:what i expected|my expectations)\b", "exceeded expectations"),
        (r"\b(?:some|bits|parts)(?: ?things?)? (?:of it )?(?:was |were )?(?:good|great|fine)\W+"
         r"(?:some|bits|parts)(?: ?things?)? (?:of it )?(?:was |were )?(?:bad|poor|not)\b",
         "mixed"),
        (r"\bhalf and half\b|\bfifty fifty\b", "mixed"),
        (r"\b(?:good|fine|nice|okay|ok|great|friendly|helpful),? but (?:a bit |quite |very |too |"
         r"rather |really )?(?:slow|expensive|pricey|late|rude|confusing|messy|noisy|long)\b",
         "mixed"),
        (r"\b(?:good|fine|nice|okay|ok|great|friendly|helpful)(?: \w+)?,? but (?:\w+ ){0,3}?"
         r"(?:took|takes|was taking) (?:forever|ages|too long|a long time|so long)\b", "mixed"),
        (r"\b(?:good enough|passable|(?:did|does) the job|nothing to write home about|"
         r"no strong (?:feelings|views|opinion)(?: either way)?|middle of the road|"
         r"(?:somewhere |kind of |sort of )?in the middle|do not feel strongly(?: either way)?|"
         r"could have been worse|could be worse)\b", "average"),
        # commitments and past actions, said with other verbs
        (r"\bmake sure (?:it is|it gets|that is|that gets|the \w+ is|the \w+ gets) paid\b",
         "i will pay"),
        (r"\b(?:i will|i am going to|i can) (?:put|stick|pop) it on (?:my|the) (?:card|account)\b",
         "i will pay"),
        (r"^(?:it is |that is |all )?(?:sorted|settled|done|cleared) already\b|"
         r"^already (?:sorted|settled|done|cleared)\b", "it has been paid"),
        (r"\b(?:has|have|had|it is|is|was) (?:already )?been (?:taken care of|sorted|settled|"
         r"cleared|handled|dealt with)\b", "it has been paid"),
        (r"\b(?:we|i|my \w+|he|she) (?:already )?(?:paid|cleared|settled) (?:that|the|this|it)\b",
         "i paid"),
        (r"\b(?:good for (?:me|that day|then)|(?:happy|plan|planning|intend|intending) to "
         r"(?:come|attend|be there))\b", "yes"),
        (r"\b(?:i will|i am going to|i am|i will be|we will|i can)"
         r"(?: (?!not\b|never\b|unable\b|hardly\b|barely\b)\w+){0,2}? "
         r"(?:pay|paying|settle|settling|transfer|send|sort|clear|do a bank transfer|"
         r"get it to you|have it paid)\b", "i will pay"),
        (r"\b(?:went (?:out|through)|i (?:sent|transferred|made) (?:the|that|a|it|my)\b)",
         "i paid"),
        (r"\bi transferred\b", "i paid"),
        (r"\bdo not think i can\b", "i can not"),
        (r"\bnot in a position to\b", "can not"),
        (r"\bdo not get paid until\b", "can not pay until"),
        (r"\b(?:need|want|get|have)(?: a| some| a few| a little)?(?: more)? "
         r"(?:time|weeks|days|longer)\b", "need more time"),
        (r"\b(?:delay|postpone|defer) (?:the |my )?payment\b|\bpay (?:it )?later\b",
         "need more time"),
        (r"\b(?:a bit|a little|very|really) short\b|\bset up a plan\b", "money is tight"),
        # hardship told as what happened, not as "I can't"
        (r"\b(?:between jobs|out of work|lost my job|(?:been |got )?laid off|made redundant|"
         r"(?:i am |we are )?(?:broke|skint)|a rough (?:few )?(?:months|weeks|patch|time)|"
         r"(?:eaten|taken|used) (?:up )?all (?:my|our|the) (?:money|savings|cash))\b",
         "money is tight"),
        (r"\banother (?:couple of |few )?(?:weeks|days|week|month)\b", "need more time"),
        (r"\b(?:came|went|comes|goes) out (?:by|on|through|with) (?:the )?(?:standing order|"
         r"direct debit|autopay|auto pay)\b", "i paid"),
        (r"\b(?:disputing|disputed|challenge this|an error|by mistake|never agreed|"
         r"should not have to pay)\b", "dispute"),
        # questions back
        (r"\bwho (?:did you say|are you with|are you calling for|is this calling)\b",
         "who is this"),
        (r"\b(?:which|what) (?:\w+ )?(?:are you (?:with|from|talking about)|is this about)\b",
         "who is this"),
        (r"\bhow did you get (?:this|my) (?:number|phone number)\b", "who is this"),
        # the same questions in another word order ("from where you are calling?")
        (r"\b(?:from )?where (?:are you|you are) (?:calling|ringing|phoning)(?: from)?\b",
         "who is this"),
        (r"\b(?:which|what) (?:\w+ )?(?:are you|you are) (?:calling|ringing|phoning) "
         r"(?:from|for)\b", "who is this"),
        (r"\bcall (?:me )?(?:tomorrow|later|back later) instead\b", "call me later"),
        # a tag question asks for agreement, it is not one ("catch me later, yeah?")
        (r"(?<=\w)(?:,|\s)\s*(?:yeah|yes|yep|right|okay|ok)\s*\?\s*$", ""),
        # a conclusion after the reasons is the answer ("I'll be away, so no")
        (r"^.*\W\s*so,? (no|nope|yes|yeah|yep)[.!]?$", r"\1"),
        # words that look like answers inside idioms of time
        (r"\bin no time(?: at all)?\b", "quickly"),
        (r"\bright (?=(?:now|away|here|there|after|before)\b)", ""),
        # a question back about the question is no answer to it
        (r"\bwhat do you mean\b", HEDGE_TOKEN),
        (r"^(?:sorry,? )?(?:what|how much|when|which day|what time) (?:was|is|did you say)\b"
         r".*\bagain\b", HEDGE_TOKEN),
        # "no" as a discourse particle, not an answer
        (r"\bno (?:bother|worries|trouble|probs)\b", "that is fine"),
        (r"^(?:yeah|yes|yep) no\b(?=,? \w+ \w+)", "yes"),
        # polite refusals
        (r"\bnot interested\b(?! in (?:these|your|any|the) (?:calls|survey))", "no"),
        (r"\bthanks,? but no thanks\b", "no"),
        (r"\b(?:i am )?afraid not\b", "no"),
        (r"\b(?:i will|i am going to|going to|i have to|i would have to) pass\b", "no"),
        (r"\b(?:have to|must|will have to|going to have to|need to) (?:decline|say no)\b", "no"),
        (r"\bdecided not to\b", "no"),
        (r"\bnot going to happen\b", "no"),
        (r"\b(?:do not|no longer|not) need (?:it|this|that|one|the \w+)(?: any ?more)?\b", "no"),
        (r"\bno longer need\b", "no"),
        (r"\bdo not want (?:it|to come|the \w+)(?: any ?more)?\b", "no"),
        (rf"\b(?:am |are |is )?{_NEG} (?:going to be )?able to\b", "can not"),
        (r"\bunable to\b", "can not"),
        (rf"\b{_WILL_NOT} (?:be )?(?:come|coming|go|going|attend|attending)\b", "can not come"),
    )
)  # fmt: skip
_HEDGE = re.compile(
    r"\b(?:maybe|possibly|perhaps|not sure|unsure|no idea|"
    r"not (?:too|very|really|quite|entirely|totally|all that|a hundred percent) sure|"
    r"do not know yet|not yet|we will see|let you know|"
    r"(?:have|need) to (?:see|check|ask|think)|let me (?:check|think|see)|depends|"
    rf"think about it|{HEDGE_TOKEN})\b"
)


def rewrite(text: str) -> str:
    """``text`` with negated negatives, hedges and polite refusals in plain words."""
    s = surface(text)
    for pattern, replacement in _RULES:
        s = pattern.sub(replacement, s)
    return s


def hedged(rewritten: str) -> list[str]:
    """The hedge expressions in a ``rewrite``-ten answer (empty when it is not hedged)."""
    return [m.group(0) for m in _HEDGE.finditer(rewritten)]


# --- counter-offers and slots ---

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY = (
    r"(?P<day>monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|"
    r"(?:the )?week ?end|next week|the week after|a week later|another day|other day|"
    r"different day|next one)"
)
_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "noon": 12,
}  # fmt: skip
_CLOCK = re.compile(
    r"\b(?:at |for |around |about |after |before |by |until |from )?"
    r"(?P<n>\d{1,2}|" + "|".join(_NUMBERS) + r")"
    r"(?::(?P<m>\d\d))?(?: ?o ?clock)?(?: ?(?P<ampm>am|pm|a m|p m|in the morning|"
    r"in the afternoon|in the evening))?\b"
    r"(?! (?:days?|weeks?|months?|hours?|minutes?|mins?|years?)\b)"  # a duration, not a time
)
_PART = re.compile(
    r"\b(?P<part>morning|afternoon|evening|lunchtime|noon|earlier|sooner|"
    r"later in the (?:day|week|month)|later slot|later time|later date)\b"
)
_DAY_RE = re.compile(rf"\b{_DAY}\b")
_ASK = re.compile(
    r"\b(?:could|would|how about|what about|is there|are there|instead|rather|prefer|"
    r"better|possible|if|only|maybe|do you have|opening|slot|free|suit|move|push|"
    r"bump|change|switch|shift)\b"
)
_NOT_THIS_TIME = re.compile(
    r"\b(?:not (?:on |at |for )?(?:that|this|the) (?:day|date|time|slot)|not then|"
    r"(?:that|this|the) (?:day|date|time|slot) (?:is bad|is no good|does not work|"
    r"will not work|is not good|is not great|is a problem|does not suit)|"
    r"can not (?:on|at|do) (?:that|this|the) (?:day|date|time)|"
    r"rearrange|re-arrange|switch days|change days|shift it|bump it|"
    r"what else (?:do you have|is there|have you got)|any other day|another time|"
    r"a different time|different date|a new date|other day)\b"
)
_CALL_BACK = re.compile(r"\b(?:call|ring|phone|try)(?: me)?(?: back| again)?\b")
_PARTS = {"lunchtime": "noon", "sooner": "earlier"}


def _hour(m: re.Match[str]) -> str | None:
    raw = m.group("n")
    n = int(raw) if raw.isdigit() else _NUMBERS[raw]
    if not 1 <= n <= 12 and not (raw.isdigit() and n <= 23):
        return None
    ampm = (m.group("ampm") or "").replace(" ", "")
    whole = m.group(0)
    prefixes = ("at ", "for ", "around ", "about ", "after ", "before ", "by ", "until ", "from ")
    if not ampm and not whole.startswith(prefixes) and raw != "noon":
        return None  # a bare number is not a time ("two days")
    if ampm in ("pm", "intheafternoon", "intheevening") and n < 12:
        n += 12
    elif not ampm and 1 <= n <= 6:
        n += 12  # "at three": office hours
    return f"{n:02d}:{int(m.group('m') or 0):02d}"


def slots(text: str) -> dict[str, str]:
    """The day and time an answer names: ``{"day": "friday", "time": "afternoon"}``.

    Days: a weekday, ``tomorrow``, ``weekend``, ``next week``. Times: ``HH:MM`` for a clock
    time ("at three", "two pm", "ten in the morning"), else ``morning``, ``afternoon``,
    ``evening``, ``noon``, ``earlier`` or ``later``.
    """
    s = surface(text)
    out: dict[str, str] = {}
    day = _DAY_RE.search(s)
    if day is not None:
        word = day.group("day").replace("the ", "")
        if word in _DAYS or word == "tomorrow":
            out["day"] = word
        elif word.replace(" ", "") == "weekend":
            out["day"] = "weekend"
        elif word in ("next week", "the week after", "a week later"):
            out["day"] = "next week"
    if re.search(r"\b(?:shift|move|push) it (?:a|one|by a) week\b", s):
        out["day"] = "next week"
    for m in _CLOCK.finditer(s):
        hour = _hour(m)
        if hour is not None:
            out["time"] = hour
            break
    else:
        part = _PART.search(s)
        if part is not None:
            word = part.group("part")
            out["time"] = "later" if word.startswith("later") else _PARTS.get(word, word)
    return out


def counter_offer(text: str) -> bool:
    """Whether the answer asks for another day or time (rather than yes or no).

    Either it rejects the time offered ("not that day", "that time doesn't work", "what else
    do you have") or it names a day or time while asking or preferring ("could we do
    thursday", "friday would be better", "earlier if possible"). Asking to be called back
    ("call me tomorrow") is not a counter-offer.
    """
    s = surface(text)
    if _CALL_BACK.search(s):
        return False
    if _NOT_THIS_TIME.search(s):
        return True
    named = slots(text)
    if "time" in named and named["time"] in ("earlier", "later"):
        return True
    return bool(named) and _ASK.search(s) is not None


# --- opt-outs in general form ---

_CONTACT = (
    r"(?:call|calls|calling|called|phone|phoning|phoned|ring|ringing|rung|contact|contacting|"
    r"contacted|robocalls?|bother|bothering|text|texting|message|messaging|survey calls)"
)
_OPT_OUT = re.compile(
    "|".join(
        (
            rf"\b(?:stop|quit|cease|end)\b(?: \w+){{0,3}}? {_CONTACT}\b",
            rf"\bno more\b(?: \w+){{0,3}}? {_CONTACT}\b",
            rf"\bnever\b(?: \w+){{0,2}}? {_CONTACT}\b",
            rf"\bdo not (?:ever |you ever |\w+ )?{_CONTACT} (?:me|this number|here|us|my)\b",
            rf"\b(?:do not|never) want\b(?: \w+){{0,4}}? {_CONTACT}\b",
            rf"\bdo not\b(?: \w+){{0,3}}? {_CONTACT}\b(?: \w+){{0,4}}? (?:again|any ?more|ever)\b",
            r"\b(?:remove|removed|take|delete|erase|get|scrub|cross)\b(?: \w+){0,3}? "
            r"(?:off|from|out of)\b(?: \w+){0,3}? (?:list|lists|system|records|database)\b",
            r"\b(?:remove|delete|erase|lose)\b (?:me|my (?:phone )?number|my name|my details|"
            r"this number|my information)\b",
            r"\bdo not call list\b",
            r"\bunsubscribe\b",
            r"\bopt (?:me )?out\b",
            r"\bleave me alone\b",
        )
    )
)


def opt_out_pattern(text: str) -> str | None:
    """The words of a general opt-out form in the answer, or ``None``."""
    m = _OPT_OUT.search(surface(text))
    return m.group(0) if m else None
