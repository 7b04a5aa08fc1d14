"""Prompt labels for the category boards: multi-turn, longer query, coding, math and language.

Text in, labels out; no Django, no numpy. Only the user side of a vote's conversation is read: the labels
describe what was asked, not how the models answered. The labels of one vote are stored as one compact
key (`labels_key`), so per-combination pair counts can be kept under it and summed into any category.

Also here: the normalised-prompt hash and the down-sampling rule for very frequent prompts ("hi"), which
the official leaderboard applies so that a handful of greetings do not outweigh real questions.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from math import ceil

# FastChat's "longer query" board takes conversations whose user prompts add up to 500 tokens or more; we
# estimate tokens instead of running a tokenizer (no model files to download), see `estimated_tokens`.
LONG_QUERY_TOKENS = 500

# The languages the detector chooses among, with rough shares of arena prompts (English about 70%, then
# Chinese, Russian, German, ...). A closed set keeps the detector fast and stops short prompts scattering
# over rare look-alike languages; the shares act as a prior that only tips near-ties, which is what turns
# "hi" and "hello" (which lingua alone calls Vietnamese and Italian) into English.
LANGUAGE_PRIOR = {
    "ENGLISH": 0.70,
    "CHINESE": 0.07,
    "RUSSIAN": 0.05,
    "GERMAN": 0.03,
    "JAPANESE": 0.02,
    "FRENCH": 0.02,
    "SPANISH": 0.02,
    "PORTUGUESE": 0.015,
    "ITALIAN": 0.01,
    "KOREAN": 0.01,
    "POLISH": 0.01,
    "VIETNAMESE": 0.005,
    "ARABIC": 0.005,
    "PERSIAN": 0.005,
    "TURKISH": 0.005,
    "UKRAINIAN": 0.005,
    "INDONESIAN": 0.005,
    "DUTCH": 0.005,
    "HINDI": 0.005,
    "CZECH": 0.005,
}
DETECTED_LANGUAGES = tuple(LANGUAGE_PRIOR)
# Lingua's confidences are not calibrated likelihoods, so the prior is tempered: at the full prior a German
# sentence scored 0.42 German / 0.11 English came out English. 0.3 sits inside the range that turns "hello"
# English but keeps "Hallo, wie geht es dir?" German (about 0.19 to 0.43, read off lingua's scores).
PRIOR_EXPONENT = 0.3
# Language code for prompts with no natural-language text to judge (only code, digits or emoji).
UNDETERMINED = "und"

# Flag order in the labels key: each flag has one letter, written in this order when set.
FLAG_LETTERS = {"multi_turn": "t", "long_query": "l", "coding": "c", "math": "m"}
FLAGS = tuple(FLAG_LETTERS)
# Coding and math read at most this much of the user prompts: ~35 ms per 7,000 characters in regexes, and
# a long paste shows what it is about well before 20,000 characters.
CLASSIFIED_CHARS = 20_000


@dataclass(frozen=True)
class PromptLabels:
    """What a vote's user prompts are about; `language` is an ISO 639-1 code or "und"."""

    language: str
    multi_turn: bool = False
    long_query: bool = False
    coding: bool = False
    math: bool = False

    def flags(self) -> tuple[str, ...]:
        """Names of the flags that are set, in key order."""
        return tuple(name for name in FLAGS if getattr(self, name))


def user_prompts(conversation: Iterable[dict]) -> list[str]:
    """The user messages of a conversation, in order."""
    return [str(m.get("content") or "") for m in conversation if m.get("role") == "user"]


def multi_turn(conversation: Iterable[dict]) -> bool:
    """More than one user message."""
    return len(user_prompts(conversation)) > 1


CJK_CHAR = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
TOKEN_PIECE = re.compile(rf"[{CJK_CHAR}]|[^\W{CJK_CHAR}]+|[^\w\s]", re.UNICODE)


def estimated_tokens(text: str) -> int:
    """Tokens a GPT-style tokenizer would use, estimated: a CJK character is one, a word one per 4 letters."""
    # Word pieces average about four characters in English BPE vocabularies; CJK characters are mostly one
    # token each; punctuation and symbols one each.
    total = 0
    for piece in TOKEN_PIECE.findall(text):
        total += max(1, round(len(piece) / 4)) if len(piece) > 1 else 1
    return total


def long_query(conversation: Iterable[dict]) -> bool:
    """User prompts of LONG_QUERY_TOKENS estimated tokens or more, summed over the conversation."""
    return sum(estimated_tokens(p) for p in user_prompts(conversation)) >= LONG_QUERY_TOKENS


CODE_FENCE = re.compile(r"```")
# Text that only appears in code, logs or shell sessions; one match is enough.
CODE_SYNTAX = re.compile(
    r"(^\s*(def|class|import|from\s+\S+\s+import|#include|package|using\s+namespace|public\s+(static\s+)?\w+|"
    r"fn\s+\w+|func\s+\w+|let\s+\w+\s*=|const\s+\w+\s*=|var\s+\w+\s*=|for\s*\(|while\s*\(|if\s*\(.*\)\s*\{|"
    r"SELECT\s.+\sFROM|CREATE\s+TABLE|\$\s+\w+|>>>)\b)"
    r"|(\w+\.\w+\(.*\)\s*;?\s*$)|(\bconsole\.log\b|\bprint\(|\bSystem\.out\.|\bstd::|\bprintf\(|=>|->\s*\w|::\w)"
    r"|(Traceback \(most recent call last\)|\bat\s+[\w.$]+\([\w.]+:\d+\)|\w+(Error|Exception):\s)"
    r"|(<\s*(div|span|html|script|body|table|button)\b[^>]*>)|(\b\w+_\w+\s*\()|(\{\s*\"\w+\"\s*:)",
    re.MULTILINE | re.IGNORECASE,
)
# Programming languages, tools and code vocabulary; they mean coding when a task word comes with them.
# ASCII word edges instead of \b: "用Python写" has no \b around Python (CJK characters count as word
# characters), and "C++" has none after the pluses.
CODE_WORDS = re.compile(
    r"(?<![a-z0-9_])(python|javascript|typescript|java|c\+\+|c#|golang|rust|kotlin|swift|php|ruby|perl|scala|"
    r"haskell|matlab|sql|mysql|postgres(ql)?|sqlite|html|css|bash|shell|powershell|regex|regular expression|api|"
    r"json|yaml|xml|docker|dockerfile|kubernetes|git|github|rebase|react|vue|angular|django|flask|fastapi|"
    r"node(\.js)?|npm|pip|numpy|pandas|pytorch|tensorflow|linux|unix|kernel|threads?|mutex|compiler?|runtime|"
    r"keyword|variable|array|string|integer|boolean|function|method|class|object|recursion|algorithm|loop|"
    r"code|coding|program(ming)?|script|snippet|library|framework|endpoint|database|query|stack trace|"
    r"segfault|bug|debug|leetcode|unit tests?|big-o|time complexity|quicksort|binary search|linked list|"
    r"binary tree|hash ?map|dataframes?|excel formula|vba)(?![a-z0-9_])",
    re.IGNORECASE,
)
CODE_TASKS = re.compile(
    r"\b(write|implement|create|build|fix|debug|refactor|optimi[sz]e|convert|translate|explain|review|"
    r"generate|complete|compile|run|install|deploy|parse|sort|reverse|error|exception|crash(es|ing)?|"
    r"doesn'?t work|not working|returns?|output|how (do|can) i|how to)\b|写|代码|函数|程序|实现|报错|"
    r"напиши|код|функци|программ|コード|関数|プログラム|코드|함수",
    re.IGNORECASE,
)
# Everyday phrases with a code word in them that are not about programming.
NOT_CODE = re.compile(
    r"\b(code of conduct|dress code|zip code|postal code|post code|area code|morse code|da vinci code|"
    r"promo code|discount code|coupon code|cheat code|qr code|bar ?code|genetic code|penal code|tax code|"
    r"source of the nile|java (island|coffee)|python (snake|bite|habitat|eats?)|ruby (ring|gemstone|slippers)|"
    r"rust (on|off) (my|the)|bug (bite|spray)|bugs? in (my|the) (garden|house|kitchen)|"
    r"function of (the|a|my) (liver|heart|kidney|lungs?|brain|mitochondri\w*)|(tv|radio|wedding|degree|"
    r"exercise|training|workout|loyalty) program)",
    re.IGNORECASE,
)


def coding(conversation: Iterable[dict]) -> bool:
    """The user asks about code: code in the prompt, or a programming word with a programming task."""
    text = "\n".join(user_prompts(conversation))[:CLASSIFIED_CHARS]
    if CODE_FENCE.search(text) or CODE_SYNTAX.search(text):
        return True
    cleaned = NOT_CODE.sub(" ", text)
    words = {m.group(0).lower() for m in CODE_WORDS.finditer(cleaned)}
    # Two distinct code words ("python function", "sql query") or one with a task ("fix this bug").
    return len(words) >= 2 or (len(words) == 1 and bool(CODE_TASKS.search(cleaned)))


LATEX = re.compile(
    r"\\(frac|int|sum|sqrt|prod|lim|infty|cdot|times|leq|geq|neq|alpha|beta|theta|pi|partial)\b|\$[^$\n]*[\^_=][^$\n]*\$"
)
# An arithmetic expression or equation: digits or single-letter variables joined by operators.
EXPRESSION = re.compile(
    r"(\b\d+(\.\d+)?\s*[\+\*/\^×÷]\s*\(?-?\d)|(\b\d*[a-z]\s*(\^|\*\*)\s*\d)|(\b\d+[a-z]\b\s*[\+\-]\s*\d)|"
    r"(\b[a-z]\s*[\+\-\*/]\s*\d+\s*=)|(=\s*-?\d+\s*[a-z]\b)|(\b[fg]\([a-z]\)\s*=)|(\d+\s*!\s)|(√\s*\d)",
    re.IGNORECASE,
)
MATH_WORDS = re.compile(
    r"\b(solve|equation|integral|integrate|derivative|differentiate|limit of|matrix|matrices|eigen\w*|"
    r"determinant|probability|expected value|variance|theorem|lemma|prove that|proof|polynomial|logarithm|"
    r"factorial|prime numbers?|divisible|remainder|modulo|gcd|lcm|geometry|triangle|hypotenuse|radius|"
    r"circumference|area of|volume of|perimeter|percent(age)? of|fraction|quadratic|linear algebra|calculus|"
    r"arithmetic|sequence|series|converge|vector|trigonometr\w*|sine|cosine|tangent|angle|algebra|"
    r"inequality|combinatoric\w*|permutations?|combinations|how many ways|sum of|product of|square root|"
    r"dice|die roll|coin flips?|average speed|polygon|hexagon|diagonals|"
    r"cube root|exponent|simplify|evaluate|calculate|compute|multiply|divided by|plus|minus|times)\b"
    r"|方程|积分|导数|概率|计算|求解|证明|уравнени|интеграл|производн|вероятност|вычисли|реши|"
    r"方程式|確率|計算|방정식|확률|계산",
    re.IGNORECASE,
)
# Talk about mathematics that poses no problem to work out.
NOT_MATH = re.compile(
    r"\b(math (teacher|class|classes|homework help|tutor|anxiety|major|degree|department)|"
    r"(history|biography) of (mathematics|math)|famous mathematicians?|version \d|v\d+\.\d+|"
    r"python \d|\d{1,2}:\d{2}|\d{4}-\d{2}-\d{2}|\+\d{1,3}[\s-]\d{3})",
    re.IGNORECASE,
)


def math(conversation: Iterable[dict]) -> bool:
    """The user poses a maths problem: notation, an expression, or two maths words ("solve ... equation")."""
    text = NOT_MATH.sub(" ", "\n".join(user_prompts(conversation))[:CLASSIFIED_CHARS])
    if LATEX.search(text) or EXPRESSION.search(text):
        return True
    words = {m.group(0).lower() for m in MATH_WORDS.finditer(text)}
    has_number = bool(re.search(r"\d", text))
    # One maths word with a number ("calculate 15% of 80") or two maths words ("prove the theorem ...").
    return len(words) >= 2 or (len(words) == 1 and has_number)


_detectors: dict[bool, object] = {}
_detector_lock = threading.Lock()


def language_detector(*, low_accuracy: bool = False):
    """The lingua detector over DETECTED_LANGUAGES, built on first use and then shared (one per mode)."""
    if low_accuracy not in _detectors:
        with _detector_lock:
            if low_accuracy not in _detectors:
                from lingua import Language, LanguageDetectorBuilder

                builder = LanguageDetectorBuilder.from_languages(*(getattr(Language, n) for n in DETECTED_LANGUAGES))
                # Models load on the first detection (seconds), not here, so importing this module stays cheap.
                _detectors[low_accuracy] = (builder.with_low_accuracy_mode() if low_accuracy else builder).build()
    return _detectors[low_accuracy]


LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


def language(conversation: Iterable[dict], *, low_accuracy: bool = False) -> str:
    """ISO 639-1 code of the user prompts' language, or "und" when they hold no words to judge.

    High-accuracy mode by default: low-accuracy mode (trigrams only) is 3x faster per call but misjudges
    more short prompts; bench/prompt_labels.py prints both.
    """
    text = "\n".join(user_prompts(conversation))
    # Code blocks are mostly English keywords whatever language the question is asked in.
    prose = re.sub(r"```.*?(```|$)", " ", text, flags=re.DOTALL)
    if len(LETTER.findall(prose)) < 2:
        prose = text
        if len(LETTER.findall(prose)) < 2:
            return UNDETERMINED
    # The first 2,000 characters decide: enough for the detector, and long pastes cost no more.
    confidences = language_detector(low_accuracy=low_accuracy).compute_language_confidence_values(prose[:2000])
    best, score = None, 0.0
    for confidence in confidences:
        weighted = confidence.value * LANGUAGE_PRIOR[confidence.language.name] ** PRIOR_EXPONENT
        if weighted > score:
            best, score = confidence.language, weighted
    return UNDETERMINED if best is None else best.iso_code_639_1.name.lower()


def prompt_labels(conversation: list[dict]) -> PromptLabels:
    """All labels of one vote's conversation."""
    return PromptLabels(
        language=language(conversation),
        multi_turn=multi_turn(conversation),
        long_query=long_query(conversation),
        coding=coding(conversation),
        math=math(conversation),
    )


def labels_key(labels: PromptLabels) -> str:
    """Canonical compact key, e.g. "en:cm": language, a colon, then the set flags' letters in fixed order."""
    if not re.fullmatch(r"[a-z]{2,3}", labels.language):
        raise ValueError(f"language must be a 2-3 letter lowercase code, not {labels.language!r}")
    return labels.language + ":" + "".join(FLAG_LETTERS[name] for name in labels.flags())


def parse_labels_key(key: str) -> PromptLabels:
    """The labels a key stands for; rejects keys that `labels_key` would not have written."""
    language_code, sep, letters = key.partition(":")
    names = [name for name, letter in FLAG_LETTERS.items() if letter in letters]
    labels = PromptLabels(language_code, **{name: True for name in names})
    if not sep or labels_key(labels) != key:
        raise ValueError(f"not a canonical labels key: {key!r}")
    return labels


PUNCTUATION_OR_SYMBOL = ("P", "S")


def normalised_prompt(text: str) -> str:
    """Prompt text with case, punctuation, symbols and runs of whitespace folded away (NFKC first)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(ch)[0] in PUNCTUATION_OR_SYMBOL else ch for ch in text)
    return " ".join(kept.split())


def prompt_hash(conversation: Iterable[dict]) -> str:
    """sha256 hex of the normalised user prompts: equal for "Hi!" and "hi", distinct for different follow-ups."""
    # All user turns count, so a conversation that only opens with "hi" is not taken for the bare greeting.
    joined = "\n".join(normalised_prompt(p) for p in user_prompts(conversation))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def high_frequency_threshold(prompt_counts: Iterable[int], top_share: float = 0.001, minimum: int = 10) -> int:
    """Vote count above which a prompt is high-frequency: the top `top_share` of distinct prompts, at least `minimum`."""
    counts = sorted(int(c) for c in prompt_counts)
    if not counts:
        return minimum
    # The count at the (1 - top_share) quantile of distinct prompts, as FastChat's top-0.1% rule.
    index = min(len(counts) - 1, ceil((1.0 - top_share) * len(counts)) - 1)
    return max(minimum, counts[max(index, 0)])


def keep_prompt_vote(occurrence: int, threshold: int) -> bool:
    """Whether the `occurrence`-th vote (1-based) on one prompt counts, given the high-frequency threshold.

    The first `threshold` votes all count; after that the rule keeps every 2nd vote up to 2x threshold,
    every 4th up to 4x, every 8th up to 8x, and so on. A prompt seen n > threshold times keeps about
    threshold * (1 + log2(n / threshold) / 2) votes.
    """
    # Why this rule: it needs only the count so far, so a vote is decided once, when it arrives, and a
    # recompute from the same votes gives the same board (no random sample to re-draw); kept votes still
    # arrive, ever more thinly, so models added later meet the popular prompts too (keeping only the first
    # `threshold` would give them none); and the total grows only logarithmically, so "hi" cannot swamp a
    # board however often it is typed.
    if occurrence < 1 or threshold < 1:
        raise ValueError("occurrence and threshold start at 1")
    if occurrence <= threshold:
        return True
    # Votes threshold+1..2*threshold are block 1 (stride 2), up to 4*threshold block 2-3 (stride 4), ...
    stride = 2 ** ((occurrence - 1) // threshold).bit_length()
    return (occurrence - threshold) % stride == 0
