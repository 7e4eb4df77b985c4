"""Instruction prompts for instruction SFT and RL: constraint samplers and phrasings, a prompt
generator with verified reference answers, and the trl rule reward.

    from vtkit import instructions as ins
    ds = ins.make_prompts(200, seed=0, n_constraints=(1, 3))   # prompt, instruction_id_list, kwargs, solutions, ...
    ds = ins.constrained_prompts(64, seed=0, instruction_ids=["startend:quotation"])   # only these types
    ins.REGISTRY["keywords:existence"].describe(keywords=["river"])   # the phrasing a prompt states
    GRPOTrainer(..., reward_funcs=[ins.instruction_reward])    # 1.0 when every constraint holds (strict)

The constraints are IFEval's 25 instruction ids plus vtkit's 3 (`vtkit:ordered_items`,
`vtkit:start_phrase`, `vtkit:numbered_list`), checked by `vtkit.ifeval_checks` with IFEval's
semantics on the answer after `</think>`. This module adds what training needs around them: per id
a sampler of keyword arguments and IFEval's phrasing (`REGISTRY`, with the groups of mutually
exclusive ids and the pairs that cannot hold together), `make_prompts` (a base request plus 1-3
phrased constraints and a reference response that `check_strict` accepts), and the rule reward
(`instruction_reward`: 1.0 when every constraint holds; rows without constraints get None).
The checkers' public names (`check_strict`, `check_loose`, `answer_text`, `Options`, ...) are also
importable from here.

Departures from IFEval: parameter ranges of the prompt generator are smaller than IFEval's (tiny
models write short answers), and `language:response_language` grades IFEval data but is never
generated (the composer writes English filler only). `make_prompts` writes a reference response
per prompt, built by a simple composer and kept only when `check_strict` accepts it, so every
prompt comes with a verified solution. Records of `make_prompts` and of the IFEval loader
(vtkit.evalsets) share one schema: `meta` holds `instruction_id_list` and `kwargs` (a list of
dicts; make_prompts also keeps them as top-level columns for trl);
`vtkit.evaluation.instruction_fields(record)` reads either.
"""
from __future__ import annotations

import collections
import json
import random
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

import datasets

from vtkit.ifeval_checks import (  # noqa: F401  (re-exported: the checkers' names, as before the split)
    CHECKERS,
    CONSTRAINED_OPTIONS,
    END_THINK,
    IFEVAL,
    IFEVAL_IDS,
    RELATIONS,
    THINK,
    VTKIT_IDS,
    Options,
    answer_text,
    check,
    check_loose,
    check_strict,
    count_sentences,
    count_words,
    detect_language,
    graded_letter,
    parse_kwargs,
    punkt_tokenizer,
    sent_tokenize,
    split_sentences,
    word_tokenize,
)
from vtkit.ifeval_checks import clean_kwargs as _clean


# ----------------------------------------------------------------------------- samplers and phrasings

KEYWORDS = ["river", "garden", "planet", "music", "winter", "coffee", "island", "robot", "forest", "candle",
            "mountain", "library", "ocean", "bridge", "lantern", "harvest", "puzzle", "rocket", "village", "window"]
ITEMS = ["apple", "banana", "cherry", "mango", "lemon", "grape", "peach", "plum", "melon", "kiwi"]
END_PHRASES = ["Is there anything else I can help with?", "Let me know if you have additional questions.",
               "Any other questions?", "That is all for now."]
START_PHRASES = ["Here is my answer", "Good question", "In short", "To begin"]
FIRST_WORDS = ["today", "first", "next", "finally", "overall", "clearly"]
TITLES = ["notes for today", "a quiet plan", "simple thoughts", "the short version"]
PLACEHOLDERS = ["name", "place", "date", "address", "time"]


def _rel(rng):
    return rng.choice(RELATIONS)


@dataclass(frozen=True)
class Instruction:
    """One constraint type: its IFEval checker, a kwargs sampler, the prompt phrasing."""

    id: str
    sampler: Callable[[random.Random], dict]
    describer: Callable[..., str]
    group: str = ""  # instructions sharing a non-empty group are mutually exclusive in one prompt
    conflicts: frozenset = field(default_factory=frozenset)

    @property
    def checker(self) -> Callable[..., bool]:
        return CHECKERS[self.id]

    def check(self, response: str, **kwargs) -> bool:
        """Strict check of a full response (think part stripped; empty answer fails)."""
        return check_strict(response, [self.id], [kwargs])[0]

    def sample_kwargs(self, rng: random.Random) -> dict:
        return self.sampler(rng)

    def describe(self, **kwargs) -> str:
        return self.describer(**_clean(kwargs))


def _join(words):
    return ", ".join(f'"{w}"' for w in words)


# IFEval's language codes (instructions_util.LANGUAGE_CODES)
LANGUAGES = {"en": "English", "es": "Spanish", "pt": "Portuguese", "ar": "Arabic", "hi": "Hindi", "fr": "French",
             "ru": "Russian", "de": "German", "ja": "Japanese", "it": "Italian", "bn": "Bengali", "uk": "Ukrainian",
             "th": "Thai", "ur": "Urdu", "ta": "Tamil", "te": "Telugu", "bg": "Bulgarian", "ko": "Korean",
             "pl": "Polish", "he": "Hebrew", "fa": "Persian", "vi": "Vietnamese", "ne": "Nepali", "sw": "Swahili",
             "kn": "Kannada", "mr": "Marathi", "gu": "Gujarati", "pa": "Punjabi", "ml": "Malayalam", "fi": "Finnish"}
# ids that grade IFEval data but that make_prompts does not generate (its composer writes English filler only)
NOT_GENERATED = {"language:response_language"}

_SPECS = [
    Instruction("punctuation:no_comma", lambda r: {},
                lambda: "In your entire response, refrain from the use of any commas."),
    Instruction("detectable_format:json_format", lambda r: {},
                lambda: "Entire output should be wrapped in JSON format. You can use markdown ticks such as ```.",
                group="layout"),
    Instruction("detectable_format:number_bullet_lists", lambda r: {"num_bullets": r.randint(1, 5)},
                lambda num_bullets: f"Your answer must contain exactly {num_bullets} bullet points. Use the markdown "
                                    "bullet points such as:\n* This is point 1.\n* This is point 2", group="layout"),
    Instruction("detectable_format:multiple_sections",
                lambda r: {"section_spliter": r.choice(["Section", "SECTION"]), "num_sections": r.randint(1, 4)},
                lambda section_spliter, num_sections: f"Your response must have {num_sections} sections. Mark the "
                f"beginning of each section with {section_spliter} X, such as:\n{section_spliter} 1\n"
                f"[content of section 1]\n{section_spliter} 2\n[content of section 2]", group="layout"),
    Instruction("detectable_format:title", lambda r: {},
                lambda: "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>."),
    Instruction("keywords:existence", lambda r: {"keywords": r.sample(KEYWORDS, r.randint(1, 2))},
                lambda keywords: f"Include keywords {_join(keywords)} in the response."),
    Instruction("keywords:forbidden_words",
                lambda r: {"forbidden_words": r.sample(KEYWORDS, r.randint(1, 3))},
                lambda forbidden_words: f"Do not include keywords {_join(forbidden_words)} in the response."),
    Instruction("keywords:frequency",
                lambda r: {"keyword": r.choice(KEYWORDS), "frequency": r.randint(1, 3), "relation": _rel(r)},
                lambda keyword, frequency, relation: f'In your response, the word "{keyword}" should appear '
                                                     f"{relation} {frequency} times."),
    Instruction("keywords:letter_frequency",
                lambda r: {"letter": r.choice("bcdfghkmpvwyz"), "let_frequency": r.randint(1, 6),
                           "let_relation": _rel(r)},
                lambda letter, let_frequency, let_relation: f'In your response, the letter "{letter}" should appear '
                                                            f"{let_relation} {let_frequency} times."),
    Instruction("length_constraints:number_words",
                lambda r: {"num_words": r.choice([10, 20, 30, 50, 80, 120]), "relation": _rel(r)},
                lambda num_words, relation: f"Answer with {relation} {num_words} words."),
    Instruction("length_constraints:number_sentences",
                lambda r: {"num_sentences": r.randint(2, 8), "relation": _rel(r)},
                lambda num_sentences, relation: f"Your response should contain {relation} {num_sentences} sentences."),
    Instruction("length_constraints:number_paragraphs",
                lambda r: {"num_paragraphs": r.randint(2, 4)},
                lambda num_paragraphs: f"There should be {num_paragraphs} paragraphs. Paragraphs are separated with "
                                       "the markdown divider: ***", group="layout"),
    Instruction("length_constraints:nth_paragraph_first_word",
                lambda r: (lambda n: {"num_paragraphs": n, "nth_paragraph": r.randint(1, n),
                                      "first_word": r.choice(FIRST_WORDS)})(r.randint(2, 4)),
                lambda num_paragraphs, nth_paragraph, first_word: f"There should be {num_paragraphs} paragraphs. "
                "Paragraphs and only paragraphs are separated with each other by two new lines as if it was '\\n\\n' "
                f"in python. Paragraph {nth_paragraph} must start with word {first_word}.", group="layout"),
    Instruction("change_case:english_lowercase", lambda r: {},
                lambda: "Your entire response should be in English, and in all lowercase letters. No capital letters "
                        "are allowed.", group="case"),
    Instruction("change_case:english_capital", lambda r: {},
                lambda: "Your entire response should be in English, and in all capital letters.", group="case"),
    Instruction("change_case:capital_word_frequency",
                lambda r: {"capital_frequency": r.randint(1, 4), "capital_relation": _rel(r)},
                lambda capital_frequency, capital_relation: "In your response, words with all capital letters should "
                f"appear {capital_relation} {capital_frequency} times.", group="case"),
    Instruction("startend:end_checker", lambda r: {"end_phrase": r.choice(END_PHRASES)},
                lambda end_phrase: f'Finish your response with this exact phrase "{end_phrase}". No other words '
                                   "should follow this phrase."),
    Instruction("startend:quotation", lambda r: {},
                lambda: "Wrap your entire response with double quotation marks.", group="start"),
    Instruction("combination:repeat_prompt", lambda r: {"prompt_to_repeat": ""},
                lambda prompt_to_repeat: "First repeat the request word for word without change, then give your "
                "answer (1. do not say any words or characters before repeating the request; 2. the request you need "
                "to repeat does not include this sentence)", group="start"),
    Instruction("combination:two_responses", lambda r: {},
                lambda: "Give two different responses. Responses and only responses should be separated by 6 "
                        "asterisk symbols: ******.", group="layout"),
    Instruction("detectable_content:postscript",
                lambda r: {"postscript_marker": r.choice(["P.S.", "P.P.S"])},
                lambda postscript_marker: "At the end of your response, please explicitly add a postscript starting "
                                          f"with {postscript_marker}"),
    Instruction("detectable_content:number_placeholders",
                lambda r: {"num_placeholders": r.randint(1, 3)},
                lambda num_placeholders: f"The response must contain at least {num_placeholders} placeholders "
                                         "represented by square brackets, such as [address]."),
    Instruction("detectable_format:number_highlighted_sections",
                lambda r: {"num_highlights": r.randint(1, 3)},
                lambda num_highlights: f"Highlight at least {num_highlights} sections in your answer with markdown, "
                                       "i.e. *highlighted section*."),
    Instruction("detectable_format:constrained_response", lambda r: {},
                lambda: "Answer with one of the following options: " + ", ".join(f'"{o}"' for o in CONSTRAINED_OPTIONS),
                group="layout"),
    Instruction("language:response_language", lambda r: {"language": "en"},
                lambda language: f"Your ENTIRE response should be in {LANGUAGES.get(language, language)} language, "
                                 "no other language is allowed.", group="language"),
    Instruction("vtkit:ordered_items", lambda r: {"items": r.sample(ITEMS, r.randint(2, 3))},
                lambda items: "Mention these items in exactly this order: " + ", then ".join(items) + "."),
    Instruction("vtkit:start_phrase", lambda r: {"start_phrase": r.choice(START_PHRASES)},
                lambda start_phrase: f'Begin your response with the exact phrase "{start_phrase}".', group="start"),
    Instruction("vtkit:numbered_list", lambda r: {"num_items": r.randint(2, 5)},
                lambda num_items: f"Your answer must be a numbered list with exactly {num_items} items, numbered "
                                  "1. 2. 3. and so on, one per line.", group="layout"),
]

# pairs that cannot hold together (beyond the groups): a lowercase "section 1" is no "Section 1", etc.
_CONFLICT_PAIRS = [
    ("change_case:english_lowercase", "detectable_format:multiple_sections"),
    ("change_case:english_lowercase", "detectable_format:constrained_response"),
    ("change_case:english_capital", "detectable_format:constrained_response"),
    ("detectable_format:json_format", "detectable_format:title"),
    ("detectable_format:json_format", "startend:end_checker"),
    ("detectable_format:json_format", "detectable_content:postscript"),
    ("detectable_format:json_format", "startend:quotation"),
    ("detectable_format:json_format", "combination:repeat_prompt"),
    ("detectable_format:json_format", "vtkit:start_phrase"),
    ("keywords:existence", "keywords:forbidden_words"),
    ("keywords:frequency", "keywords:forbidden_words"),
    ("keywords:frequency", "keywords:existence"),
    ("length_constraints:number_sentences", "detectable_format:constrained_response"),
    ("length_constraints:number_words", "detectable_format:constrained_response"),
]
_conf = collections.defaultdict(set)
for _a, _b in _CONFLICT_PAIRS:
    _conf[_a].add(_b)
    _conf[_b].add(_a)
REGISTRY: dict[str, Instruction] = {
    s.id: Instruction(s.id, s.sampler, s.describer, s.group, frozenset(_conf[s.id])) for s in _SPECS}
if set(REGISTRY) != set(CHECKERS):   # every checker has a sampler and a phrasing, and no phrasing lacks a checker
    raise RuntimeError(f"REGISTRY and ifeval_checks.CHECKERS differ: {sorted(set(REGISTRY) ^ set(CHECKERS))}")


# ----------------------------------------------------------------------------- trl reward

def make_instruction_reward(mode: str = "all", loose: bool = False):
    """A trl reward: mode "all" gives 1.0 iff every constraint holds, "fraction" the share that hold.

    Rows without constraints (empty instruction_id_list, e.g. open-ended prompts in a mixture)
    get None, which trl leaves out of that reward function's statistics.
    """
    if mode not in ("all", "fraction"):
        raise ValueError(f"mode must be 'all' or 'fraction', got {mode!r}")
    checker = check_loose if loose else check_strict

    def reward(completions, instruction_id_list, kwargs, **_):
        out = []
        for c, ids, kw in zip(completions, instruction_id_list, kwargs, strict=True):
            text = c if isinstance(c, str) else c[-1]["content"]
            if not ids:
                out.append(None)
                continue
            ok = checker(text, ids, kw)
            out.append(float(all(ok)) if mode == "all" else sum(ok) / len(ok))
        return out

    reward.__name__ = f"instruction_{mode}" + ("_loose" if loose else "")
    return reward


instruction_reward = make_instruction_reward("all")
instruction_reward.__name__ = "instruction_reward"


# ----------------------------------------------------------------------------- prompt generator + reference composer

BASE_TASKS = [
    "Write a short note about the sea.", "Describe your ideal weekend.", "Explain why people enjoy music.",
    "Write a short story about a robot.", "Give advice to a new student.", "Describe a walk in the park.",
    "Write a product description for a water bottle.", "Explain how plants grow.",
    "Write a letter to a friend about a trip.", "Describe a rainy day in the city.", "Write a short poem about winter.",
    "Summarize the benefits of exercise.", "Write a review of a small cafe.", "Explain how a bicycle works.",
    "Describe your favorite season.", "Write a short speech for a school event.", "Give tips for saving money.",
    "Describe a visit to a museum.", "Write an email inviting a colleague to lunch.", "Explain why sleep is important.",
]

# comma-free, no all-caps words, no "I", none starts with "A ", no keyword or item word
FILLER = [
    "The morning air feels fresh and cool.", "Small steps lead to big changes.", "The old road bends past the hill.",
    "People like to share good news.", "The light fades slowly in the evening.", "Every plan needs a clear goal.",
    "The dog sleeps by the door.", "Warm bread smells wonderful.", "The team worked hard all week.",
    "Quiet moments help us think.", "The children laughed at the joke.", "Clouds drift across the blue sky.",
    "Good habits make life easier.", "The train arrived right on time.", "Fresh water is always welcome.",
    "The shop opens early on Monday.", "Kind words cost nothing.", "The path is wide and easy to follow.",
    "Time passes fast when we are busy.", "The cat watches the birds outside.", "Simple tools often work best.",
    "The city wakes up slowly.", "Friends make hard days lighter.", "The wind moves the tall grass.",
    "Careful work saves time later.", "The lake looks calm at dawn.", "Old books hold many stories.",
    "The sun sets behind the hills.", "New ideas need some patience.", "The bus stops near the corner.",
    "Clean rooms feel calm.", "The runner kept a steady pace.", "Tea tastes best when it is hot.",
    "The students asked good questions.", "Long walks clear the mind.", "The bell rang at noon.",
    "Honest advice is rare and useful.", "The boat rocked on small waves.", "Fresh snow covers the ground.",
    "The market is busy on weekends.", "Patience makes learning easier.", "The stars shine on clear nights.",
]
CAPS = ["NOTE", "IMPORTANT", "ALWAYS", "READY", "CLEAR", "SIMPLE"]


def _letter_word(letter: str) -> str:
    words = {"b": "bob", "c": "cocoa", "d": "dad", "f": "fluff", "g": "egg", "h": "hush", "k": "kick", "m": "mom",
             "p": "pop", "v": "velvet", "w": "wow", "y": "yay", "z": "fizz"}
    return words.get(letter, letter * 3)


def compose_reference(base: str, ids: Sequence[str], kwargs_list, rng: random.Random) -> str | None:
    """A response meeting every constraint (answer part only), or None when the composer finds none.

    It builds filler text around the required pieces (keywords, placeholders, highlights, layout,
    start/end phrases, case) and grows the filler until `check_strict` passes; None when no length
    within its range satisfies all constraints together.
    """
    kws = parse_kwargs(list(ids), kwargs_list)
    spec = dict(zip(ids, kws))
    forbidden = spec.get("keywords:forbidden_words", {}).get("forbidden_words", [])
    freq = spec.get("keywords:frequency")
    letter = spec.get("keywords:letter_frequency")
    avoid = list(forbidden) + ([freq["keyword"]] if freq else [])
    pool = [s for s in FILLER if not any(re.search(w, s, flags=re.IGNORECASE) for w in avoid)]
    rng.shuffle(pool)
    if letter and letter["let_relation"] == "less than":
        pool.sort(key=lambda s: s.lower().count(letter["letter"]))
    if not pool:
        return None

    extras = []
    if "keywords:existence" in spec:
        extras.append("We think about the " + " and the ".join(spec["keywords:existence"]["keywords"]) + ".")
    if freq and freq["relation"] == "at least":
        extras += [f"The {freq['keyword']} matters."] * freq["frequency"]
    if letter and letter["let_relation"] == "at least":
        w = _letter_word(letter["letter"])
        per = w.count(letter["letter"])
        extras.append("Say " + " ".join([w] * -(-letter["let_frequency"] // per)) + ".")
    cap = spec.get("change_case:capital_word_frequency")
    if cap and cap["capital_relation"] == "at least":
        extras.append(" ".join(CAPS[:cap["capital_frequency"]]) + " matters here.")
    if "detectable_content:number_placeholders" in spec:
        n = spec["detectable_content:number_placeholders"]["num_placeholders"]
        extras.append("Fill in " + " and ".join(f"[{p}]" for p in PLACEHOLDERS[:n]) + " later.")
    if "vtkit:ordered_items" in spec:
        its = spec["vtkit:ordered_items"]["items"]
        extras.append(" ".join(["First comes the " + its[0] + "."] + [f"Then comes the {x}." for x in its[1:]]))
    n_high = spec.get("detectable_format:number_highlighted_sections", {}).get("num_highlights", 0)

    layout = next((i for i in ids if REGISTRY[i].group == "layout"), None)
    lk = spec.get(layout, {})
    n_units = {"detectable_format:number_bullet_lists": lk.get("num_bullets"),
               "vtkit:numbered_list": lk.get("num_items"),
               "detectable_format:multiple_sections": lk.get("num_sections"),
               "length_constraints:number_paragraphs": lk.get("num_paragraphs"),
               "length_constraints:nth_paragraph_first_word": lk.get("num_paragraphs")}.get(layout) or 1
    option = rng.choice(CONSTRAINED_OPTIONS)
    end = spec.get("startend:end_checker", {}).get("end_phrase")
    ps = spec.get("detectable_content:postscript", {}).get("postscript_marker")

    def body(k: int, offset: int) -> str:
        fill = [pool[(offset + j) % len(pool)] for j in range(k)]
        for j in range(min(n_high, len(fill))):
            fill[j] = "Note *" + fill[j][:-1] + "*."
        sents = extras + fill
        if len(sents) < n_units:
            return ""
        units = [sents[u::n_units] for u in range(n_units)]
        texts = [" ".join(u) for u in units]
        if layout == "length_constraints:nth_paragraph_first_word":
            t = texts[lk["nth_paragraph"] - 1]
            texts[lk["nth_paragraph"] - 1] = lk["first_word"].capitalize() + " " + t[0].lower() + t[1:]
        if layout == "detectable_format:number_bullet_lists":
            return "\n".join("* " + t for t in texts)
        if layout == "vtkit:numbered_list":
            return "\n".join(f"{i + 1}. {t}" for i, t in enumerate(texts))
        if layout == "detectable_format:multiple_sections":
            return "\n\n".join(f"{lk['section_spliter']} {i + 1}\n{t}" for i, t in enumerate(texts))
        if layout == "length_constraints:number_paragraphs":
            return "\n***\n".join(texts)
        if layout == "length_constraints:nth_paragraph_first_word":
            return "\n\n".join(texts)
        if layout == "detectable_format:json_format":
            return json.dumps({"answer": " ".join(texts)})
        if layout == "detectable_format:constrained_response":
            return (" ".join(texts) + " " + option).strip()
        return " ".join(texts)

    def render(k: int) -> str:
        if layout == "combination:two_responses":
            text = body(k, 0) + "\n******\n" + body(k, k + 1)
        else:
            text = body(k, 0)
        if not text:
            return ""
        if "detectable_format:title" in spec:
            text = f"<<{rng_title}>>\n" + text
        if "combination:repeat_prompt" in spec:
            text = spec["combination:repeat_prompt"]["prompt_to_repeat"] + "\n" + text
        if "vtkit:start_phrase" in spec:
            text = spec["vtkit:start_phrase"]["start_phrase"] + ". " + text
        if ps:
            text += f"\n\n{ps} {pool[-1]}"
        if end:
            text += "\n" + end
        if "change_case:english_lowercase" in spec:
            text = text.lower()
        if "change_case:english_capital" in spec:
            text = text.upper()
        if "punctuation:no_comma" in spec:
            text = text.replace(",", "")
        if "startend:quotation" in spec:
            text = f'"{text}"'
        return text

    rng_title = rng.choice(TITLES)
    k0 = 0 if layout == "detectable_format:constrained_response" else 1
    for k in range(k0, k0 + 40):
        text = render(k)
        if text and all(check_strict(text, ids, kws)):
            return text
    return None


def _pick_ids(rng: random.Random, k: int) -> list[str]:
    chosen: list[str] = []
    pickable = sorted(set(REGISTRY) - NOT_GENERATED)
    for iid in rng.sample(pickable, len(pickable)):
        ins = REGISTRY[iid]
        if any(ins.group and REGISTRY[c].group == ins.group or c in ins.conflicts for c in chosen):
            continue
        chosen.append(iid)
        if len(chosen) == k:
            break
    return chosen


def make_prompts(n: int, seed: int = 0, n_constraints: tuple[int, int] = (1, 3),
                 base_tasks: Sequence[str] | None = None, max_tries: int = 200) -> datasets.Dataset:
    """n constrained prompts: a base request plus 1..3 constraint phrasings, each with a verified reference.

    Columns: id, domain ("instruct"), subdomain ("constrained"), prompt, instruction_id_list,
    kwargs (JSON list of dicts, one per id), answer ("" : no single gold), tests (""),
    difficulty (number of constraints), solutions ([think + reference answer]), meta (JSON: base_task,
    and instruction_id_list and kwargs again: the schema the IFEval loader writes, read by `constraints`;
    the top-level columns are what trl passes to `instruction_reward`).
    Same (n, seed, n_constraints, base_tasks) -> same rows.
    """
    lo, hi = n_constraints
    if not 1 <= lo <= hi <= 5:
        raise ValueError(f"n_constraints must be (lo, hi) with 1 <= lo <= hi <= 5, got {n_constraints}")
    bases = list(base_tasks or BASE_TASKS)
    if not bases:
        raise ValueError("base_tasks is empty; pass at least one request such as 'Describe a walk in the park.'")
    rng = random.Random(f"vtkit-instruct-{seed}")
    rows = []
    for i in range(n):
        for _ in range(max_tries):
            base = rng.choice(bases)
            ids = _pick_ids(rng, rng.randint(lo, hi))
            kws = [REGISTRY[x].sample_kwargs(rng) for x in ids]
            for x, kw in zip(ids, kws):
                if x == "combination:repeat_prompt":
                    kw["prompt_to_repeat"] = base
            ref = compose_reference(base, ids, kws, rng)
            if ref is not None:
                break
        else:
            raise RuntimeError(f"no satisfiable constraint set found in {max_tries} tries for prompt {i}; "
                               "check base_tasks (commas or keywords in them can clash with constraints)")
        prompt = " ".join([base] + [REGISTRY[x].describe(**kw) for x, kw in zip(ids, kws)])
        think = f"{THINK}\nThe answer must follow {len(ids)} constraint(s): " + "; ".join(ids) + f".\n{END_THINK}\n"
        rows.append({"id": f"instruct-s{seed}-{i:05d}", "domain": "instruct", "subdomain": "constrained",
                     "prompt": prompt, "instruction_id_list": ids, "kwargs": json.dumps(kws), "answer": "",
                     "tests": "", "difficulty": len(ids), "solutions": [think + ref],
                     "meta": json.dumps({"base_task": base, "instruction_id_list": ids, "kwargs": kws})})
    return datasets.Dataset.from_list(rows)


def constrained_prompts(n: int, seed: int = 0, n_constraints=(1, 1), instruction_ids: Sequence[str] | None = None,
                        base_tasks: Sequence[str] | None = None, unique: bool = False, max_rounds: int = 200):
    """n rows of vtkit.make_prompts whose constraints all come from `instruction_ids` (None: any).

    Draws make_prompts batches with seeds seed, seed+1, ... and keeps matching rows (and, with
    unique=True, each prompt text once) until n are found; same arguments, same rows.
    """
    allowed = None if instruction_ids is None else set(instruction_ids)
    if allowed is not None:
        bad = sorted(allowed - set(REGISTRY))
        if bad or not allowed:
            raise ValueError(f"unknown instruction ids {bad}; valid: {', '.join(sorted(REGISTRY))}")
    rows, seen = [], set()
    for k in range(max_rounds):
        if len(rows) >= n:
            break
        batch = make_prompts(max(2 * n, 32), seed=seed * 1000 + k, n_constraints=tuple(n_constraints),
                                          base_tasks=base_tasks)
        for r in batch:
            if (allowed is None or set(r["instruction_id_list"]) <= allowed) and not (unique and r["prompt"] in seen):
                seen.add(r["prompt"])
                rows.append(r)
    if len(rows) < n:
        raise ValueError(f"found only {len(rows)} of {n} prompts with constraints from {sorted(allowed or [])}"
                         f"{' (unique)' if unique else ''}; ask for fewer, or allow more instruction ids / base tasks")
    return datasets.Dataset.from_list(rows[:n])
