"""How callee speech is normalised: one form for the intent rules and for recognisers.

``normalise("Do NOT contact me!")`` equals ``normalise("don't contact me")``: ASCII-folded
lowercase words, contractions expanded (also as recognisers write them: "dont"), filler words
dropped. The intent matcher (``outdial.script.intents``) matches on it, and a recogniser's
acceptance check must compare with it too, so both agree on what counts as a phrase heard.
Standard library only, so every layer may call it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

NEGATORS = frozenset(
    {"not", "no", "never", "nobody", "nothing", "neither", "nor", "without", "none", "hardly"}
)
# Tokens after which a following "not" or "never" negates the match ("I will not").
POST_NEGATORS = frozenset({"not", "never"})
# Function words and bare yes/no count half towards a phrase's specificity.
FUNCTION_WORDS = frozenset({
    "i", "me", "my", "mine", "you", "your", "we", "us", "our", "it", "its", "is", "am", "are",
    "was", "were", "be", "been", "the", "a", "an", "to", "of", "in", "on", "at", "for", "this",
    "that", "these", "those", "do", "does", "did", "will", "would", "can", "could", "shall",
    "should", "have", "has", "had", "with", "and", "or", "there", "here",
    "yes", "yeah", "yep", "yup", "no", "nope", "nah", "okay", "ok",
})  # fmt: skip
# Never fuzzy-matched: a typo must not turn a word into its opposite.
NEGATING_PREFIXES = ("un", "dis", "in", "im", "non", "ir", "il")
_CLAUSE_BREAK = re.compile(r"[,.;:!?()\[\]\"]+|\s-\s|\s--\s")
_CONJUNCTIONS = frozenset({"but", "though", "although", "however", "except"})
_WORD = re.compile(r"[a-z0-9]+")
_HYPHEN = re.compile(r"(?<=[a-z])-(?=[a-z])")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})
_CONTRACTIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r)
    for p, r in (
        (r"\bwon't\b", "will not"),
        (r"\bcan't\b", "can not"),
        (r"\bshan't\b", "shall not"),
        (r"\bain't\b", "is not"),
        (r"\bcannot\b", "can not"),
        (r"n't\b", " not"),
        (r"'m\b", " am"),
        (r"'re\b", " are"),
        (r"'ve\b", " have"),
        (r"'ll\b", " will"),
        (r"'d\b", " would"),
        (r"\blet's\b", "let us"),
        (r"\b(it|that|what|who|where|there|here|he|she|how|this)'s\b", r"\1 is"),
        (r"'s\b", ""),
    )
)
# The same contractions as speech recognisers and hurried typists write them.
_BARE_CONTRACTIONS: dict[str, tuple[str, ...]] = {
    "dont": ("do", "not"), "cant": ("can", "not"), "wont": ("will", "not"),
    "didnt": ("did", "not"), "doesnt": ("does", "not"), "isnt": ("is", "not"),
    "arent": ("are", "not"), "wasnt": ("was", "not"), "werent": ("were", "not"),
    "havent": ("have", "not"), "hasnt": ("has", "not"), "hadnt": ("had", "not"),
    "couldnt": ("could", "not"), "wouldnt": ("would", "not"), "shouldnt": ("should", "not"),
    "im": ("i", "am"), "ive": ("i", "have"), "youre": ("you", "are"), "thats": ("that", "is"),
    "whats": ("what", "is"), "whos": ("who", "is"), "gonna": ("going", "to"),
    "wanna": ("want", "to"), "gotta": ("got", "to"), "kinda": ("kind", "of"),
    "sorta": ("sort", "of"), "dunno": ("do", "not", "know"), "lemme": ("let", "me"),
    "gimme": ("give", "me"), "u": ("you",), "ur": ("your",), "pls": ("please",),
    "plz": ("please",), "thx": ("thanks",),
}  # fmt: skip
# Set expressions whose words would otherwise mislead the negation rules.
_IDIOMS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("not", "a", "problem"), ("fine",)),
    (("no", "problem"), ("fine",)),
    (("no", "worries"), ("fine",)),
    (("no", "problems"), ("fine",)),
    (("no", "issues"), ("fine",)),
    (("can", "not", "wait"), ("looking", "forward")),
    (("why", "not"), ("sure",)),
    (("no", "doubt"), ("sure",)),
    (("without", "a", "doubt"), ("sure",)),
    (("of", "course", "not"), ("no",)),
    (("so", "so"), ("soso",)),
    # Affirmative grunts, as recognisers spell them ("mm-hm", "uh-huh" split at the hyphen);
    # without this they would be dropped as hesitations and a plain yes lost.
    (("mm", "hm"), ("yes",)),
    (("mm", "hmm"), ("yes",)),
    (("m", "hm"), ("yes",)),
    (("uh", "huh"), ("yes",)),
    (("uh", "hu"), ("yes",)),
    # Recogniser homophones and split words (the words are heard right, written wrong).
    (("all", "ready"), ("already",)),
    (("to", "day"), ("today",)),
    (("to", "morrow"), ("tomorrow",)),
    (("write", "now"), ("right", "now")),
    (("be", "their"), ("be", "there")),
    (("be", "they", "are"), ("be", "there")),
)
# One spelling per answer word: "yep", "ya", "aye" are "yes"; "nah", "nope" are "no". Phrases
# and answers fold alike, so a template listing only "yes" also hears "yup".
_CANONICAL = {
    "yeah": "yes", "yep": "yes", "yup": "yes", "yah": "yes", "yeh": "yes",
    "yea": "yes", "aye": "yes", "yessir": "yes", "mhm": "yes", "mhmm": "yes", "mmhmm": "yes",
    "uhhuh": "yes", "nah": "no", "nope": "no", "naw": "no", "nay": "no",
}  # fmt: skip
# A bare "ill"/"id" is "I'll"/"I'd" when a verb follows ("ill be there"), else the word ill.
_BARE_BEFORE_VERB = {"ill": ("i", "will"), "id": ("i", "would"), "hed": ("he", "would")}
_VERBS_AFTER_WILL = frozenset({
    "be", "pay", "come", "do", "make", "call", "send", "get", "have", "take", "try", "see",
    "attend", "settle", "sort", "transfer", "go", "give", "need", "like", "love", "prefer",
    "rather", "say", "think", "check", "miss", "bring", "look", "let", "put", "cancel",
})  # fmt: skip
# An answer opening with "know" was a "no" ("know I can't"), unless a question or object
# follows ("know what", "know that").
_KNOW_KEEPERS = frozenset(
    {"what", "that", "it", "how", "who", "where", "why", "when", "if", "about", "the", "this"}
)
_FILLERS = frozenset({
    "um", "umm", "uhm", "uh", "uhh", "er", "erm", "hmm", "hm", "mm", "mmm", "ah", "ahh", "eh",
    "oh", "actually", "basically", "honestly", "literally", "just",
})  # fmt: skip
_CLAUSE_START_FILLERS = frozenset({"well", "so", "okay", "ok", "alright", "anyway"})
# "like" is a verb after these ("I'd like to", "didn't like it"), a filler elsewhere.
_LIKE_KEEPERS = frozenset(
    {"i", "we", "you", "they", "would", "do", "does", "did", "not", "really", "also"}
)
_FILLER_BIGRAMS = (("you", "know"), ("i", "mean"))


@dataclass(frozen=True, slots=True)
class Utterance:
    """Normalised tokens and, for each token, the clause it belongs to."""

    tokens: tuple[str, ...]
    clauses: tuple[int, ...]

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


def fold(text: str) -> str:
    """Lowercase ASCII with contractions expanded and hyphens split; punctuation kept."""
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    text = text.encode("ascii", "ignore").decode("ascii").lower()
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return _HYPHEN.sub(" ", text)


def _replace_idioms(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for idiom, replacement in _IDIOMS:
            if tuple(tokens[i : i + len(idiom)]) == idiom:
                out.extend(replacement)
                i += len(idiom)
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


def _drop_fillers(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tuple(tokens[i : i + 2]) in _FILLER_BIGRAMS:
            i += 2
            continue
        i += 1
        if tok in _FILLERS or (tok == "like" and (not out or out[-1] not in _LIKE_KEEPERS)):
            continue
        out.append(tok)
    # "well", "so", "okay"... open a clause as fillers; "okay" alone is an answer.
    while out and out[0] in _CLAUSE_START_FILLERS and (len(out) > 1 or out[0] in ("well", "so")):
        out.pop(0)
    return out


def analyse(text: str) -> Utterance:
    """Normalise ``text``: ASCII-folded lowercase words, contractions expanded, noise words
    dropped, split into clauses at punctuation and at "but"/"though"."""
    tokens: list[str] = []
    clauses: list[int] = []
    clause = 0
    for chunk in _CLAUSE_BREAK.split(fold(text)):
        words: list[str] = []
        found = _WORD.findall(chunk)
        for k, word in enumerate(found):
            after = found[k + 1] if k + 1 < len(found) else ""
            if word in _BARE_BEFORE_VERB and after in _VERBS_AFTER_WILL:
                words.extend(_BARE_BEFORE_VERB[word])
            elif word == "know" and not tokens and not words and after not in _KNOW_KEEPERS:
                words.append("no")
            elif word == "ya" and not words:  # "ya" opening a clause is "yeah", else "you"
                words.append("yes")
            else:
                words.extend(_BARE_CONTRACTIONS.get(word, (word,)))
        words = [_CANONICAL.get(w, w) for w in words]
        parts: list[list[str]] = [[]]
        for word in words:
            if word in _CONJUNCTIONS:
                parts.append([])
            else:
                parts[-1].append(word)
        for part in parts:
            kept = _drop_fillers(_replace_idioms(part))
            if kept:
                tokens.extend(kept)
                clauses.extend([clause] * len(kept))
                clause += 1
    return Utterance(tuple(tokens), tuple(clauses))


def normalise(text: str) -> str:
    """The normalised form of ``text`` as one space-separated string (see ``analyse``)."""
    return analyse(text).text
