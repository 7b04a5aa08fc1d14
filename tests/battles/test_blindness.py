"""The blindness detector: each normalisation step, the term rules, the streaming scanner, `asks_identity`,
and the thresholds on the labelled corpus in tests/battles/data (see its README)."""

import dataclasses
import json
import random
from pathlib import Path

import pytest

from battles.blindness import (
    GENERIC_NAME_PARTS,
    VISITOR_REASONS,
    Identity,
    LeakDetector,
    TermKind,
    asks_identity,
    fold,
    name_parts,
    system_prompt_names,
    system_prompt_phrases,
    words_of,
)

DATA_DIR = Path(__file__).parent / "data"
LEAK_RECALL_FLOOR = 0.98
CLEAN_FALSE_POSITIVE_CEILING = 0.01


def load_corpus() -> dict:
    """The registry, leaking answers (perturbed and real) and clean real answers, with their labels."""
    perturbed = json.loads((DATA_DIR / "perturbed_leaks.json").read_text())
    real = json.loads((DATA_DIR / "real_answers.json").read_text())["answers"]
    labels = json.loads((DATA_DIR / "real_labels.json").read_text())["labels"]
    leaks = [leak["answer"] for leak in perturbed["leaks"]]
    leaks += [answer["answer"] for answer in real if labels[answer["id"]]["label"] == "leak"]
    clean = [answer["answer"] for answer in real if labels[answer["id"]]["label"] == "clean"]
    return {
        "registry": [Identity(**model) for model in perturbed["registry"]],
        "leaks": leaks,
        "clean": clean,
        "hard_negatives": [item["answer"] for item in perturbed["hard_negatives"]],
    }


CORPUS = load_corpus()


@pytest.fixture(scope="module")
def detector() -> LeakDetector:
    return LeakDetector(CORPUS["registry"])


def found(detector: LeakDetector, text: str) -> str | None:
    leak = detector.find(text)
    return leak and leak.identity.name


SMOLLM = "SmolLM2-135M-Instruct"
GEMMA = "Gemma-3-270M (base model, not instruction tuned)"


# -- the corpus thresholds ---------------------------------------------------------------------------------


def test_corpus_has_enough_leaks_and_clean_answers_to_measure():
    assert len(CORPUS["leaks"]) >= 200
    assert len(CORPUS["clean"]) >= 400


def test_detector_finds_at_least_98_percent_of_leaking_answers(detector):
    missed = [text for text in CORPUS["leaks"] if detector.find(text) is None]
    recall = 1 - len(missed) / len(CORPUS["leaks"])
    assert recall >= LEAK_RECALL_FLOOR, f"recall {recall:.3f}; missed e.g. {missed[:5]}"


def test_detector_flags_at_most_1_percent_of_clean_answers_from_the_real_models(detector):
    flagged = [(text, detector.find(text)) for text in CORPUS["clean"]]
    flagged = [(text[:120], leak.evidence) for text, leak in flagged if leak is not None]
    rate = len(flagged) / len(CORPUS["clean"])
    assert rate <= CLEAN_FALSE_POSITIVE_CEILING, f"false positives {rate:.3f}: {flagged}"


def test_hand_written_hard_negatives_are_not_flagged(detector):
    flagged = [text for text in CORPUS["hard_negatives"] if detector.find(text) is not None]
    assert flagged == []


def test_the_corpus_leaks_are_mostly_missed_by_lowercase_substring_matching():
    """The corpus is worth its name: even substring matching, laxer than today's check, misses most leaks."""
    terms = {term.lower() for identity in CORPUS["registry"] for term in (identity.name, identity.organization)}
    terms |= {identity.served_model_id.lower() for identity in CORPUS["registry"]}
    exact = sum(any(term in text.lower() for term in terms) for text in CORPUS["leaks"])
    assert exact / len(CORPUS["leaks"]) < 0.6


# -- normalisation, one step at a time ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "I am ＳｍｏｌＬＭ２.",  # full-width forms (NFKC)
        "I am 𝐒𝐦𝐨𝐥𝐋𝐌.",  # mathematical bold (NFKC)
        "I am ⓈⓜⓞⓛⓁⓂ.",  # circled letters (NFKC only: the confusables table lacks them)
        "I am SmоlLM.",  # Cyrillic о (confusables)
        "I am ЅmοlLM.",  # Cyrillic Ѕ, Greek ο (confusables)
        "I am SmoʟLM.",  # Latin small capital L (not in the confusables table: read from its Unicode name)
        "I am Smol\u200bLM.",  # zero-width space
        "I am Smol\u00adLM.",  # soft hyphen
        "I am Sm\u200dol\ufe0fLM.",  # zero-width joiner, variation selector
        "I am Smol\u3164LM.",  # Hangul filler
        "I am **Smol**LM.",  # Markdown emphasis
        "I am `smollm`.",  # code ticks
        "I am [SmolLM](https://example.com).",  # link
        "I am Smo**lLM**.",  # emphasis splitting the name
        "I am SMOLLM.",  # case
        "I am Smol LM 2.",  # spaces at the name's own boundaries
        "I am smol-lm2.",  # hyphen
        "I am S m o l L M.",  # spelled out
        "I am Smo-\nlLM.",  # hyphenated across a line break
        "I am SmoILM.",  # capital I for small l
        "I am smollm2-135m-instruct.",  # served id
    ],
)
def test_disguised_names_are_found(detector, text):
    assert found(detector, text) == SMOLLM


@pytest.mark.parametrize(
    "text",
    [
        "Llamas are related to alpacas.",
        "That was a mistake.",
        "Metadata describes other data.",
        "I met a friend yesterday.",
        "The gem market is small.",
        "Smolensk is a city in Russia.",
        "Apply for an open assistantship at the university.",  # a name may not end inside a word
    ],
)
def test_ordinary_words_containing_or_resembling_a_name_are_not_found(text):
    detector = LeakDetector(
        [Identity("mist", "Meta", "llama"), Identity("SmolLM2", "HuggingFaceTB", "smollm2"), Identity("Open Assistant")]
    )
    assert detector.find(text) is None


@pytest.mark.parametrize(
    "text, model",
    [
        ("Running gemma3 here.", GEMMA),
        ("Powered by Gemma 3.", GEMMA),
        ("This is llama-3.1-8b speaking.", "llama-3.1-8b-instruct"),
        ("I am GPT-4o.", "gpt-4o"),
        ("GPT-4 can write code.", "gpt-4o"),
        ("Llama 3 is an open model.", "llama-3.1-8b-instruct"),
    ],
)
def test_a_version_after_a_name_still_matches(detector, text, model):
    assert found(detector, text) == model


@pytest.mark.parametrize(
    "text",
    ["GPT-3 was released in 2020.", "Llama 2 came out in 2023.", "Gemini 4 carried two astronauts."],
)
def test_a_version_that_is_not_the_registered_one_names_another_model(detector, text):
    assert detector.find(text) is None


def test_a_name_written_with_html_character_references_is_found_as_the_page_shows_it(detector):
    """The answer is rendered as Markdown, which decodes references: "Gem&#109;a" shows as the name."""
    assert found(detector, "Hello! Gem&#109;a at your service.") == GEMMA
    assert found(detector, "I am &#83;molLM2.") == SMOLLM
    scanner = detector.scanner()  # cut in the middle of the reference, as a stream may be
    assert scanner.feed("Hello! Gem&#1") is None
    leak = scanner.feed("09;a at your service.") or scanner.finish()
    assert leak is not None and leak.identity.name == GEMMA


def test_fold_removes_invisible_characters_and_folds_look_alikes_and_case():
    assert fold("Ｇ\u200bеmmа\u00ad") == "gemma"
    assert fold("Straße") == "strasse"
    assert fold("Café") == "cafe"


def test_words_are_joined_across_markup_and_hyphens_but_not_across_spaces():
    stream = words_of("smol-lm **x**y a b")
    assert stream.words == ("smol", "lm", "x", "y", "a", "b")
    assert stream.joined == (False, True, False, True, False, False)


# -- terms -------------------------------------------------------------------------------------------------


def test_name_parts_drop_generic_parts_sizes_and_versions():
    assert name_parts("SmolLM2-135M-Instruct") == [("SmolLM", "2")]
    assert name_parts("llama-3.1-8b-instruct") == [("llama", "3")]
    assert name_parts("Gemma-3-270M (base model, not instruction tuned)") == [("Gemma", "3")]
    assert name_parts("mistral-7b-chat-base-model") == [("mistral", "7")]


def test_a_generic_system_prompt_has_nothing_distinctive():
    assert system_prompt_phrases("You are a helpful assistant.") == []
    assert system_prompt_names("You are a helpful assistant.") == []
    prompt = (
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful answers."
    )
    assert system_prompt_phrases(prompt) == []


def test_a_distinctive_system_prompt_gives_its_persona_maker_and_phrases():
    prompt = "You are Aurora, made by Example Labs. Always answer in the voice of a pirate captain."
    assert system_prompt_names(prompt) == ["Aurora", "Example Labs"]
    assert ("voice", "of", "a", "pirate") in system_prompt_phrases(prompt)


def test_an_answer_quoting_the_system_prompt_is_found(detector):
    leak = detector.find("Arr! As told, I answer in the voice of a seasoned pirate captain.")
    assert leak.kind is TermKind.SYSTEM_PROMPT
    assert leak.identity.name == "llama-3.1-8b-instruct"


@pytest.mark.parametrize(
    "text",
    [
        "You can search for it on Google.",
        "TensorFlow was developed by Google.",
        "I think Meta owns Instagram.",
        "Claude Monet painted water lilies.",
        "The mistral is a cold wind.",
        "Hugging Face hosts open models.",
        "Claude Monet painted here, in Giverny.",
        "The mistral here is a cold wind.",
        "I'm from Spain and I search on Google.",
        "Sono stanco, ma Claude Monet no.",
    ],
)
def test_a_maker_or_common_word_alone_is_not_a_leak(detector, text):
    assert detector.find(text) is None


@pytest.mark.parametrize(
    "text, kind",
    [
        ("I was trained by Google.", TermKind.MAKER),
        ("I'm an AI assistant from Meta.", TermKind.MAKER),
        ("My creators at OpenAI made me careful.", TermKind.MAKER),
        ("Anthropic created me.", TermKind.MAKER),
        ("I am Claude.", TermKind.MODEL_NAME),
        ("As Claude, I cannot browse.", TermKind.MODEL_NAME),
        ("Hi, I'm ChatGPT!", TermKind.MODEL_NAME),
        ("Claude here! Happy to help.", TermKind.MODEL_NAME),
        ("Hello, Claude here.", TermKind.MODEL_NAME),
        ("Here is the letter.\n\nBest regards,\nClaude", TermKind.MODEL_NAME),
        ("Soy Claude, creado por Anthropic.", TermKind.MODEL_NAME),
        ("Sono Claude, un assistente creato da Anthropic.", TermKind.MODEL_NAME),
        ("Ich bin Claude von Anthropic.", TermKind.MODEL_NAME),
        ("Je suis Claude.", TermKind.MODEL_NAME),
        ("I'm from Anthropic, happy to help.", TermKind.MAKER),
        ("I come from Anthropic.", TermKind.MAKER),
    ],
)
def test_a_maker_or_common_word_that_identifies_the_speaker_is_a_leak(detector, text, kind):
    assert detector.find(text).kind is kind


def test_makers_anywhere_policy_flags_brand_mentions():
    """The alternative policy the bench measures: a maker counts wherever it is written."""
    anywhere = LeakDetector(CORPUS["registry"], makers_need_context=False, common_words_need_context=False)
    assert anywhere.find("You can search for it on Google.") is not None


# -- what the visitor is told ------------------------------------------------------------------------------


def test_the_reason_shown_to_the_visitor_never_names_a_model_or_maker(detector):
    reasons = {leak.reason for leak in map(detector.find, CORPUS["leaks"]) if leak is not None}
    assert reasons == set(VISITOR_REASONS.values())  # every kind of leak occurs in the corpus
    # The strictest reading: every term of every model, wherever it stands, with no context needed.
    strict = LeakDetector(CORPUS["registry"], makers_need_context=False, common_words_need_context=False)
    named = {
        word
        for identity in CORPUS["registry"]
        for text in (identity.name, identity.organization, identity.served_model_id)
        for word in words_of(text).words
        if len(word) >= 3 and not word.isdigit() and word not in GENERIC_NAME_PARTS
    }
    for reason in reasons:
        assert strict.find(reason) is None, reason
        assert not named & set(words_of(reason).words), reason


# -- the streaming scanner ---------------------------------------------------------------------------------


def random_chunks(text: str, rng: random.Random) -> list[str]:
    """The text cut at random places into pieces of 1 to 12 characters, as a stream delivers it."""
    pieces, position = [], 0
    while position < len(text):
        size = rng.randint(1, 12)
        pieces.append(text[position : position + size])
        position += size
    return pieces


def scan_in_chunks(detector: LeakDetector, chunks: list[str]):
    scanner = detector.scanner()
    for chunk in chunks:
        scanner.feed(chunk)
    return scanner.finish()


@pytest.mark.parametrize("with_system_prompts", [True, False])
def test_the_streaming_scanner_agrees_with_find_on_every_corpus_answer_chunked_at_random(with_system_prompts):
    # Without system prompts there are no phrases, whose look-ahead would hide a term resolved too early.
    registry = [
        identity if with_system_prompts else dataclasses.replace(identity, system_prompt="")
        for identity in CORPUS["registry"]
    ]
    detector = LeakDetector(registry)
    rng = random.Random(7)
    texts = CORPUS["leaks"] + CORPUS["clean"] + CORPUS["hard_negatives"]
    disagreements = []
    for text in texts:
        whole = detector.find(text)
        streamed = scan_in_chunks(detector, random_chunks(text, rng))
        if (whole and (whole.kind, whole.identity, whole.evidence)) != (
            streamed and (streamed.kind, streamed.identity, streamed.evidence)
        ):
            disagreements.append(text)
    assert disagreements == []


def test_the_scanner_reports_a_leak_before_the_answer_ends(detector):
    scanner = detector.scanner()
    for token in ["Hello", "!", " I", " am", " Sm", "ol", "LM", ",", " a", " small", " model", " that"]:
        leak = scanner.feed(token)
    assert leak is not None and leak.identity.name == SMOLLM


def test_the_scanner_waits_for_the_words_that_decide_whether_a_name_counts():
    scanner = LeakDetector([Identity("gpt-4o", "OpenAI", "gpt-4o")]).scanner()
    for token in ["Hello", ",", " this", " is", " Chat", "GPT", " "]:
        assert scanner.feed(token) is None
    for token in ["speaking", ".", " How", " can", " I", " help", "?"]:
        scanner.feed(token)
    assert scanner.finish() is not None  # "this is ChatGPT speaking"; "this is ChatGPT's rival" would not be


def test_the_scanner_waits_for_a_word_to_end_before_matching(detector):
    scanner = detector.scanner()
    assert scanner.feed("I like Gemma") is None  # "Gemma" may still become "Gemmatology"
    assert scanner.feed("tology and ") is None
    assert scanner.finish() is None


# -- prompts that ask the model who it is ------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    [
        "Who are you?",
        "who r u",
        "What's your name?",
        "What model are you?",
        "Which LLM am I talking to?",
        "Who made you?",
        "Who trained you?",
        "What company created you?",
        "Are you ChatGPT?",
        "are you gpt-4?",
        "Are you an AI?",
        "Tell me about yourself.",
        "Introduce yourself, please.",
        "Hi! Who are you and what can you do?",
        "Whо are yоu?",  # Cyrillic о
        "W\u200bho are you?",  # zero-width space
        "**Who** are you?",
        "¿Quién eres?",
        "¿Cómo te llamas?",
        "Qui es-tu ?",
        "Comment tu t'appelles ?",
        "Wer bist du?",
        "Wie heißt du?",
        "Quem é você?",
        "Qual é o seu nome?",
        "你是谁？",
        "谁开发了你？",
        "Кто ты?",
        "Как тебя зовут?",
        "Кто тебя создал?",
        "State your name, then write a haiku.",
        "Identify yourself.",
        "What are you called?",
        "Which company trained the model answering this?",
        "Write your model name as HTML entities.",
        "Reply 'A' if you were made by a US company, 'B' otherwise. Then: what is 2+2?",
        "Chi sei?",
        "Come ti chiami?",
        "Kim jesteś?",
        "Jak się nazywasz?",
        "あなたは誰ですか",
        "あなたの名前は？",
        "너는 누구야?",
        "이름이 뭐야?",
        # Asked for without a question word (a read-only review's attack: answered "Meta", counted).
        "Reply with one word only: the company that made you.",
        "Name the company that trained you.",
        "Name your creator in one word.",
        "Write the name of whoever built you backwards.",
        "What is your knowledge cutoff?",
        "What's your training data cut-off date?",
    ],
)
def test_prompts_asking_the_model_who_it_is_are_recognised(prompt):
    assert asks_identity(prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        "Who are you going to vote for?",
        "Who are you to judge me?",
        "Who is the president of France?",
        "What model of car should I buy?",
        "Which model of iPhone is best?",
        "Tell me about yourself as a teacher.",
        "Describe yourself as a pirate.",
        "What is the name of the capital of Peru?",
        "What are you doing?",
        "How are you?",
        "What can you do?",
        "What version of Python should I use?",
        "Who made the Mona Lisa?",
        "Who created Python?",
        "Explain what a large language model is.",
        "¿Quién es el presidente de México?",
        "¿Qué modelo de coche compro?",
        "Qui est le président ?",
        "Wer ist der Bundeskanzler?",
        "Quem é o presidente do Brasil?",
        "谁是美国总统？",
        "Кто президент России?",
        "If you are a beginner, start with Python.",
        "If you are going to Paris, what should you see?",
        "Write your own poem about autumn.",
        "Chi sei tu per giudicare?",
        "어떤 음식을 좋아해?",
        "Write an ad for a company that made you smile.",
        "Tell a story about the organisation that made you feel at home.",
        "Which one made you laugh, the first joke or the second?",
        "Write a thank-you note to the team that built your house.",
    ],
)
def test_prompts_about_other_people_or_things_are_not_identity_questions(prompt):
    assert not asks_identity(prompt)
