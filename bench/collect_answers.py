"""Build the labelled corpus for the blindness (identity leak) detector in tests/battles/data/.

Two parts, each written to its own JSON file:
  real       Answers from the two default arena models, served as the arena serves them: SmolLM2-135M-Instruct
             on llama-cpp-python's server with the neutral system prompt, and Gemma 3 270M (base) behind the
             Vicuna v1.1 template with the stop strings ["</s>", "USER:"]. Topic prompts (trivia, how-to,
             code, maths, writing, advice, other languages, technology and AI in general, words that are
             also model names) give the clean answers; identity prompts ("who are you?") give the answers
             that may leak. Written to real_answers.json, resumable: answers already there are kept.
  perturbed  Leaking answers made from a realistic registry (the two defaults plus popular models), each
             the self-description a model might give, disguised by one seeded perturbation (spacing,
             hyphens, case, look-alike letters, invisible characters, Markdown, partial names, served ids,
             maker self-references, system prompt quotes). Written to perturbed_leaks.json.

Labels for the real answers are a reviewer's, kept apart in real_labels.json (see the README there).
Run: .venv/bin/python bench/collect_answers.py [--part real|perturbed|all] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA_DIR = ROOT / "tests" / "battles" / "data"
REAL_PATH = DATA_DIR / "real_answers.json"
PERTURBED_PATH = DATA_DIR / "perturbed_leaks.json"

# The arena's sampling settings for the default models (inference.services.default_models_register), with
# answers cut at about 200 tokens to keep the collection within an hour on two shared cores.
TEMPERATURE = 0.7
TOP_P = 0.95
MAX_TOKENS = 200
GEMMA_STOP = ["</s>", "USER:"]
BASE_SEED = 20250101
IDENTITY_SAMPLES = 3  # identity prompts are asked with this many seeds: leaks are what we are short of

# Topic prompts: none asks the model about itself. "words" holds prompts whose answers will likely use
# ordinary words that are also model or maker names (the hard negatives for the detector).
TOPIC_PROMPTS: dict[str, list[str]] = {
    "trivia": [
        "What is the capital of Australia?",
        "How many planets are in the solar system?",
        "Who wrote Pride and Prejudice?",
        "What is the tallest mountain in the world?",
        "When did the Second World War end?",
        "What is the largest ocean on Earth?",
        "Who painted the Mona Lisa?",
        "What is the chemical symbol for gold?",
        "How many bones are in the adult human body?",
        "What is the longest river in Africa?",
        "Which planet is known as the Red Planet?",
        "Who was the first person to walk on the Moon?",
        "What language is spoken in Brazil?",
        "What is the boiling point of water in Fahrenheit?",
        "Who discovered penicillin?",
        "What is the smallest country in the world?",
        "How many continents are there?",
        "What is the speed of light?",
        "Who invented the telephone?",
        "What is the currency of Japan?",
        "What is photosynthesis?",
        "Why is the sky blue?",
        "What causes the seasons on Earth?",
        "Who was Cleopatra?",
        "What is the Great Barrier Reef?",
        "How do volcanoes form?",
        "What is the difference between weather and climate?",
        "Who composed the Four Seasons?",
        "What is the population of Canada, roughly?",
        "What are the three states of matter?",
        "Who built the pyramids of Giza?",
        "What is DNA?",
        "What was the Renaissance?",
        "How far is the Moon from the Earth?",
        "What is the hardest natural substance?",
        "What is the main ingredient of guacamole?",
    ],
    "howto": [
        "How do I boil an egg?",
        "How do I change a flat tyre?",
        "How can I improve my sleep?",
        "How do I make a cup of tea?",
        "How do I start running as a beginner?",
        "How can I save money on groceries?",
        "How do I clean a cast iron pan?",
        "How do I write a good CV?",
        "How do I plant tomatoes?",
        "How can I learn a new language quickly?",
        "How do I tie a tie?",
        "How do I bake bread at home?",
        "How do I remove a coffee stain from a shirt?",
        "How can I be more productive when working from home?",
        "How do I prepare for a job interview?",
        "How do I take care of a houseplant?",
        "How do I meditate?",
        "How do I make pancakes?",
        "How do I back up my phone?",
        "How do I set up a budget?",
    ],
    "coding": [
        "Write a Python function that reverses a string.",
        "How do I read a file line by line in Python?",
        "What is the difference between a list and a tuple in Python?",
        "Write a SQL query that counts the rows in a table called orders.",
        "Explain what a for loop is.",
        "How do I sort a dictionary by value in Python?",
        "What does git rebase do?",
        "Write a JavaScript function that adds two numbers.",
        "What is recursion? Give an example.",
        "How do I create a virtual environment in Python?",
        "What is the difference between HTTP GET and POST?",
        "Write a bash command that counts the lines in a file.",
        "What is a hash table?",
        "Explain Big O notation simply.",
        "How do I centre a div in CSS?",
        "What is an API?",
        "Write a function that checks whether a number is prime.",
        "What is the difference between == and is in Python?",
        "How do I handle exceptions in Python?",
        "What is a REST API?",
        "Explain what Docker is.",
        "Write a regular expression that matches an email address.",
    ],
    "maths": [
        "What is 17 times 23?",
        "What is the square root of 144?",
        "Solve for x: 2x + 6 = 14.",
        "What is 15% of 80?",
        "What is the area of a circle with radius 3?",
        "Is 91 a prime number?",
        "What is the derivative of x squared?",
        "Convert 100 kilometres to miles.",
        "What is the sum of the angles in a triangle?",
        "What is a prime number?",
        "If a train travels 60 km in 45 minutes, what is its speed in km/h?",
        "What is the Pythagorean theorem?",
        "What is 2 to the power of 10?",
        "Explain what a fraction is to a child.",
        "What is the average of 4, 8 and 15?",
        "How many seconds are in a day?",
        "What is the value of pi to five decimal places?",
        "What is the golden ratio?",
    ],
    "writing": [
        "Write a short poem about autumn.",
        "Write a haiku about the sea.",
        "Write a sonnet about lost love.",
        "Write a limerick about a cat.",
        "Write a two-sentence horror story.",
        "Write a thank-you note to a teacher.",
        "Write a short story about a robot who learns to paint.",
        "Write a product description for a reusable water bottle.",
        "Write an email asking my manager for a day off.",
        "Write a toast for my sister's wedding.",
        "Describe a sunset in three sentences.",
        "Write the opening line of a mystery novel.",
        "Write a motivational message for a friend starting a new job.",
        "Write a short dialogue between a customer and a waiter.",
        "Summarise the plot of Romeo and Juliet.",
        "Write a tweet announcing a bake sale.",
        "Write a riddle and give its answer.",
        "Write a short fable with a moral.",
        "Write a birthday message for my grandmother.",
        "Describe the smell of rain.",
    ],
    "advice": [
        "I feel stressed about exams. Any advice?",
        "How do I deal with a difficult coworker?",
        "Should I rent or buy a house?",
        "How can I make new friends in a new city?",
        "What should I pack for a week-long hiking trip?",
        "How do I stay motivated to exercise?",
        "What are some healthy breakfast ideas?",
        "How can I stop procrastinating?",
        "What is a good gift for a ten-year-old?",
        "How do I ask for a raise?",
        "What should I consider when adopting a dog?",
        "How can I reduce my screen time?",
        "What are good habits for a student?",
        "How do I handle a breakup?",
        "How much water should I drink a day?",
        "How do I choose a good laptop?",
        "What are tips for public speaking?",
        "How can I be a better listener?",
    ],
    "languages": [
        "¿Cuál es la capital de Francia?",
        "¿Cómo se hace una tortilla de patatas?",
        "Escribe un poema corto sobre el mar.",
        "¿Qué es la fotosíntesis?",
        "Quelle est la capitale de l'Italie ?",
        "Comment faire une omelette ?",
        "Écris un court poème sur la pluie.",
        "Pourquoi le ciel est-il bleu ?",
        "Was ist die Hauptstadt von Deutschland?",
        "Wie backe ich einen Apfelkuchen?",
        "Schreibe ein kurzes Gedicht über den Winter.",
        "Was ist ein schwarzes Loch?",
        "Qual é a capital de Portugal?",
        "Como faço um bolo de chocolate?",
        "Escreva um poema curto sobre o sol.",
        "中国的首都是哪里？",
        "如何学习编程？",
        "写一首关于春天的短诗。",
        "Какая столица России?",
        "Как приготовить борщ?",
        "Напиши короткое стихотворение о зиме.",
        "Quanto fa 7 per 8?",
        "Wat is de hoofdstad van Nederland?",
        "日本の首都はどこですか？",
    ],
    "technology": [
        "What does Google Maps do?",
        "Explain what a large language model is.",
        "What is artificial intelligence?",
        "How does a search engine work?",
        "What is machine learning?",
        "What is the difference between AI and machine learning?",
        "What is a neural network?",
        "What is cloud computing?",
        "How does the internet work?",
        "What is an operating system?",
        "What is open-source software?",
        "What does a chatbot do?",
        "What are the risks of artificial intelligence?",
        "How do self-driving cars work?",
        "What is a smartphone?",
        "What is the difference between RAM and storage?",
        "What is Wikipedia?",
        "What is social media?",
        "How do I search for something on Google?",
        "What does Apple make?",
        "What is Meta, the company that owns Facebook?",
        "What is Amazon Web Services?",
        "What is Microsoft Excel used for?",
        "What is a GPU?",
        "How does speech recognition work?",
        "What is the Turing test?",
        "Will AI replace programmers?",
        "What is deep learning?",
        "What is a transformer in machine learning?",
        "How are AI models trained?",
    ],
    "words": [
        "What is a llama?",
        "Where do llamas live?",
        "What is the difference between a llama and an alpaca?",
        "What is a vicuña?",
        "Who painted the Water Lilies?",
        "Who was Claude Debussy?",
        "What is the mistral wind?",
        "What is the Gemini constellation?",
        "What was NASA's Gemini programme?",
        "What are the traits of a Gemini in astrology?",
        "What is a falcon?",
        "What is the Greek letter phi used for in maths?",
        "What is a meta-analysis?",
        "What does the word meta mean?",
        "What is an apple a day supposed to do?",
        "What is a gem?",
        "What is a sonnet?",
        "What is a haiku?",
        "What is an opus in music?",
        "What is a mistake?",
        "What is metadata?",
        "What is an orca?",
    ],
}

# Prompts that ask the model who or what it is: their answers are where a model names itself.
IDENTITY_PROMPTS = [
    "Who are you?",
    "What is your name?",
    "What model are you?",
    "Who created you?",
    "Who trained you?",
    "Introduce yourself.",
    "Are you ChatGPT?",
    "What company made you?",
    "Which language model are you?",
    "Tell me about yourself.",
    "What are you?",
    "Who developed you, and what is your model name?",
    "Are you an AI? Which one?",
    "¿Quién eres?",
    "Qui es-tu ?",
]


@dataclass(frozen=True)
class ServedModel:
    """A default arena model as the collection runs it, and on which of the two servers."""

    key: str
    server: str
    served_model_id: str
    system_prompt: str
    stop: list[str] | None
    identity_only: bool = False


def served_models() -> list[ServedModel]:
    from inference.services import GEMMA3_SERVED_ID, NEUTRAL_SYSTEM_PROMPT, SMOLLM2_SERVED_ID

    return [
        ServedModel("smollm2", "smollm2", SMOLLM2_SERVED_ID, NEUTRAL_SYSTEM_PROMPT, None),
        # The registry gives Gemma no system prompt, so the Vicuna template's own system line is used.
        ServedModel("gemma3", "gemma3", GEMMA3_SERVED_ID, "", GEMMA_STOP),
        # SmolLM2 without the arena's neutral prompt: its chat template then says "You are a helpful AI
        # assistant named SmolLM, trained by Hugging Face", the misconfiguration that makes real leaks.
        ServedModel("smollm2_default", "smollm2", SMOLLM2_SERVED_ID, "", None, identity_only=True),
    ]


def prompt_plan() -> list[dict]:
    """Every (prompt, sample) to ask each model, with stable ids and seeds."""
    plan = []
    for category, prompts in TOPIC_PROMPTS.items():
        for index, prompt in enumerate(prompts):
            plan.append({"prompt_id": f"{category}-{index:03d}", "category": category, "prompt": prompt, "sample": 0})
    for index, prompt in enumerate(IDENTITY_PROMPTS):
        for sample in range(IDENTITY_SAMPLES):
            plan.append(
                {"prompt_id": f"identity-{index:03d}", "category": "identity", "prompt": prompt, "sample": sample}
            )
    return plan


def request_seed(model_key: str, prompt_id: str, sample: int) -> int:
    """A fixed seed per (model, prompt, sample), independent of the order answers are collected in."""
    return random.Random(f"{BASE_SEED}:{model_key}:{prompt_id}:{sample}").randrange(2**31)


def answer_request(base_url: str, model: ServedModel, prompt: str, seed: int) -> dict:
    import httpx

    messages = [{"role": "system", "content": model.system_prompt}] if model.system_prompt else []
    messages.append({"role": "user", "content": prompt})
    payload = {
        "model": model.served_model_id, "messages": messages, "temperature": TEMPERATURE, "top_p": TOP_P,
        "max_tokens": MAX_TOKENS, "seed": seed, "stream": False,
    }  # fmt: skip
    if model.stop:
        payload["stop"] = model.stop
    response = httpx.post(base_url + "/chat/completions", json=payload, timeout=600)
    response.raise_for_status()
    choice = response.json()["choices"][0]
    return {"answer": choice["message"]["content"] or "", "finish_reason": choice.get("finish_reason")}


def corpus_write(path: Path, document: dict) -> None:
    """Write atomically, so an interrupted run leaves the previous file whole."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n")
    partial.replace(path)


def collect_real(*, limit: int | None) -> None:
    """Ask both real models every planned prompt, two servers answering side by side, one thread each."""
    import concurrent.futures
    import threading

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    import django

    django.setup()
    from tqdm import tqdm

    from arena import processes
    from arena.processes import free_port
    from inference.launch import (
        bundled_gemma3_gguf,
        bundled_smollm2_gguf,
        llamacpp_program,
        model_server_env,
        wait_until_ready,
    )

    document = json.loads(REAL_PATH.read_text()) if REAL_PATH.exists() else {"answers": []}
    document["settings"] = {
        "temperature": TEMPERATURE, "top_p": TOP_P, "max_tokens": MAX_TOKENS, "gemma_stop": GEMMA_STOP,
        "base_seed": BASE_SEED, "identity_samples": IDENTITY_SAMPLES,
    }  # fmt: skip
    done = {answer["id"] for answer in document["answers"]}
    models = served_models()
    weights = {"smollm2": bundled_smollm2_gguf(), "gemma3": bundled_gemma3_gguf(ROOT / "var" / "models")}
    templates = {"smollm2": "", "gemma3": "vicuna_v1.1"}
    log_dir = ROOT / "var" / "collect-logs"
    log_dir.mkdir(parents=True, exist_ok=True)

    servers: dict[str, tuple[str, object]] = {}
    try:
        for model in [model for model in models if model.key == model.server]:
            port = free_port()
            program = llamacpp_program(
                name=model.served_model_id, model_path=weights[model.key], port=port, host="127.0.0.1",
                served_model_id=model.served_model_id, n_ctx=2048, chat_template=templates[model.key],
            )  # fmt: skip
            process = processes.start(program, log_path=log_dir / f"{model.key}.log", env=model_server_env())
            servers[model.key] = (f"http://127.0.0.1:{port}/v1", process)
        for base_url, process in servers.values():
            wait_until_ready(base_url, timeout=180, process=process)

        plan = prompt_plan()[:limit] if limit else prompt_plan()
        queues = {
            model.key: [
                item for item in plan
                if f"{model.key}/{item['prompt_id']}/s{item['sample']}" not in done
                and (item["category"] == "identity" or not model.identity_only)
            ]
            for model in models
        }  # fmt: skip

        lock = threading.Lock()

        def run_queue(model: ServedModel, progress) -> None:
            """Answer this model's queue in order, saving the corpus after every answer."""
            base_url = servers[model.server][0]
            for item in queues[model.key]:
                seed = request_seed(model.key, item["prompt_id"], item["sample"])
                started = time.monotonic()
                result = answer_request(base_url, model, item["prompt"], seed)
                record = {
                    "id": f"{model.key}/{item['prompt_id']}/s{item['sample']}", "model": model.served_model_id,
                    **item, "seed": seed, **result, "seconds": round(time.monotonic() - started, 2),
                }  # fmt: skip
                with lock:
                    document["answers"].append(record)
                    document["answers"].sort(key=lambda answer: answer["id"])
                    corpus_write(REAL_PATH, document)
                progress.update(1)

        total = sum(len(queue) for queue in queues.values())
        # One thread per server: each answers its own queue, so the two servers work side by side.
        with (
            tqdm(total=total, desc="answers", unit="answer") as progress,
            concurrent.futures.ThreadPoolExecutor(max_workers=len(models)) as pool,
        ):
            for future in [pool.submit(run_queue, model, progress) for model in models]:
                future.result()
    finally:
        for _, process in servers.values():
            processes.stop(process)
    print(f"{len(document['answers'])} answers in {REAL_PATH.relative_to(ROOT)}")


# ---------------------------------------------------------------------------------------------------------
# Perturbed leaks over a realistic registry

PERTURBATION_SEED = 20250102
LEAKS_PER_CATEGORY = 30

PIRATE_PROMPT = (
    "You are Aurora, a friendly assistant made by Example Labs. Always answer in the voice of a seasoned pirate "
    "captain."
)
# Qwen2.5's own default system prompt, as its chat template ships it.
QWEN_PROMPT = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

# The arena's two default models (as inference.services registers them) and popular models an operator would
# add, two of them with a distinctive system prompt.
REGISTRY = [
    {"name": "SmolLM2-135M-Instruct", "organization": "HuggingFaceTB", "served_model_id": "smollm2-135m-instruct",
     "system_prompt": "You are a helpful assistant."},
    {"name": "Gemma-3-270M (base model, not instruction tuned)", "organization": "Google",
     "served_model_id": "gemma-3-270m", "system_prompt": ""},
    {"name": "gpt-4o", "organization": "OpenAI", "served_model_id": "gpt-4o-2024-08-06", "system_prompt": ""},
    {"name": "claude-3-5-sonnet", "organization": "Anthropic", "served_model_id": "claude-3-5-sonnet-20241022",
     "system_prompt": ""},
    {"name": "llama-3.1-8b-instruct", "organization": "Meta", "served_model_id": "meta-llama/Llama-3.1-8B-Instruct",
     "system_prompt": PIRATE_PROMPT},
    {"name": "mistral-7b-instruct", "organization": "Mistral AI",
     "served_model_id": "mistralai/Mistral-7B-Instruct-v0.3", "system_prompt": ""},
    {"name": "gemini-1.5-pro", "organization": "Google", "served_model_id": "gemini-1.5-pro-002", "system_prompt": ""},
    {"name": "qwen2.5-7b-instruct", "organization": "Alibaba Cloud", "served_model_id": "Qwen/Qwen2.5-7B-Instruct",
     "system_prompt": QWEN_PROMPT},
    {"name": "vicuna-13b", "organization": "LMSYS", "served_model_id": "lmsys/vicuna-13b-v1.5", "system_prompt": ""},
]  # fmt: skip

# How people and models write each one: written here by hand, independently of the detector's term extraction.
SURFACES = {
    "SmolLM2-135M-Instruct": {
        "full": ["SmolLM2-135M-Instruct", "SmolLM2"], "partial": ["SmolLM", "SmolLM2"],
        "maker": ["Hugging Face", "HuggingFaceTB", "the Hugging Face team"],
    },
    "Gemma-3-270M (base model, not instruction tuned)": {
        "full": ["Gemma-3-270M", "Gemma 3"], "partial": ["Gemma"], "maker": ["Google", "Google DeepMind"],
    },
    "gpt-4o": {"full": ["GPT-4o"], "partial": ["GPT-4", "ChatGPT", "GPT"], "maker": ["OpenAI"]},
    "claude-3-5-sonnet": {
        "full": ["Claude 3.5 Sonnet", "Claude-3.5-Sonnet"], "partial": ["Claude"], "maker": ["Anthropic"],
    },
    "llama-3.1-8b-instruct": {
        "full": ["Llama-3.1-8B-Instruct", "Llama 3.1 8B"], "partial": ["Llama 3", "Llama", "LLaMA"],
        "maker": ["Meta", "Meta AI"],
    },
    "mistral-7b-instruct": {
        "full": ["Mistral-7B-Instruct", "Mistral 7B"], "partial": ["Mistral"], "maker": ["Mistral AI"],
    },
    "gemini-1.5-pro": {"full": ["Gemini 1.5 Pro", "Gemini-1.5-Pro"], "partial": ["Gemini"], "maker": ["Google"]},
    "qwen2.5-7b-instruct": {
        "full": ["Qwen2.5-7B-Instruct", "Qwen2.5"], "partial": ["Qwen", "Tongyi Qwen"],
        "maker": ["Alibaba Cloud", "Alibaba"],
    },
    "vicuna-13b": {"full": ["Vicuna-13B", "vicuna-13b-v1.5"], "partial": ["Vicuna"], "maker": ["LMSYS"]},
}  # fmt: skip

NAME_TEMPLATES = [
    "Hi there! I'm {x}, a large language model. How can I help you today?",
    "I am {x}. I can help with writing, coding, maths and general questions.",
    "My name is {x}, and I'm happy to help with your question.",
    "As {x}, I don't have personal opinions, but here is a balanced summary.",
    "You're chatting with {x}. Ask me anything!",
    "Sure! (Answer generated by {x}.) The capital of France is Paris.",
    "I'm a version of {x} that was fine-tuned to follow instructions.",
    "Hello, this is {x} speaking. Let me walk you through it step by step.",
]
SERVED_TEMPLATES = [
    "Model: {x}\n\nThe answer is 42.",
    "I am running as {x} on this server.",
    "[model={x}] Here is the code you asked for.",
    "This response was produced by {x}.",
    "I'm {x}, and here is my answer.",
]
MAKER_TEMPLATES = [
    "I was trained by {m}. How can I help?",
    "I'm an AI assistant developed by {m}.",
    "I am a large language model created by {m}, here to help.",
    "My creators at {m} designed me to be helpful and honest.",
    "{m} built me to answer questions like this one.",
    "As an AI developed by {m}, I can't browse the internet, but I can explain the idea.",
    "I'm a language model from {m}, so I may make mistakes.",
    "I was developed and trained by {m} to assist users like you.",
]
PROMPT_QUOTES = [
    "As my instructions say, I always answer in the voice of a seasoned pirate captain. Arr!",
    "Ahoy! Speaking in the voice of a seasoned pirate captain, here be yer answer.",
    "I'm Aurora, a friendly assistant made by Example Labs.",
    'My system prompt says: "You are Aurora, a friendly assistant made by Example Labs."',
    "I was made by Example Labs to help you.",
    "Hello! I am Aurora. How may I help ye, matey?",
    "I am Qwen, created by Alibaba Cloud. I am a helpful assistant.",
    "I'm Qwen, a model created by Alibaba Cloud.",
]
FILLER_SENTENCES = [
    "Let me know if you have any other questions.",
    "Here is a short explanation.",
    "I hope this helps!",
    "Photosynthesis turns light into chemical energy.",
    "The quick answer is yes, with a few caveats.",
    "First, gather your ingredients.",
    "Python lists are mutable, while tuples are not.",
    "Feel free to ask a follow-up question.",
]

# Look-alike letters an attacker or a tokenizer quirk might produce: Cyrillic, Greek, Latin small capitals,
# full-width and mathematical forms (NFKC folds the last two; the rest need the confusables table).
HOMOGLYPHS = {
    "a": "аɑα", "c": "сϲ", "e": "еҽ", "i": "іιɪ", "j": "ј", "l": "ӏℓʟ", "m": "ᴍ", "n": "ո", "o": "оοσ", "p": "рρ",
    "s": "ѕꜱ", "u": "υ", "v": "ν", "w": "ԝ", "x": "хχ", "y": "уγ", "A": "АΑ", "B": "ВΒ", "C": "СϹ", "E": "ЕΕ",
    "G": "Ԍ", "H": "НΗ", "I": "ІΙ", "K": "КΚ", "L": "Ꮮ", "M": "МΜ", "N": "Ν", "O": "ОΟ", "P": "РΡ", "Q": "Ԛ",
    "S": "Ѕ", "T": "ТΤ", "V": "Ꮩ", "W": "Ԝ", "X": "ХΧ", "Y": "ҮΥ", "Z": "Ζ",
}  # fmt: skip
INVISIBLES = ["\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\ufeff", "\ufe0f", "\u034f", "\u180e"]


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def _math_bold(text: str) -> str:
    def bold(ch: str) -> str:
        if "A" <= ch <= "Z":
            return chr(0x1D400 + ord(ch) - ord("A"))
        if "a" <= ch <= "z":
            return chr(0x1D41A + ord(ch) - ord("a"))
        return ch

    return "".join(bold(ch) for ch in text)


def _interior_positions(text: str) -> list[int]:
    return [index for index in range(1, len(text)) if text[index - 1].isalnum() and text[index].isalnum()]


def perturb_spacing(text: str, rng: random.Random) -> str:
    """Spaces where the name has boundaries, or every letter spelled out."""
    choice = rng.randrange(3)
    if choice == 0:
        return " ".join(text)
    if choice == 1:
        spaced = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", text)
        return spaced.replace("-", " ") if spaced != text else text.replace("-", " ")
    return text.replace("-", " ").replace(".", " ") if ("-" in text or "." in text) else " ".join(text)


def perturb_hyphenation(text: str, rng: random.Random) -> str:
    """A hyphen inside a word (as a line-breaking hyphenation would put it), or between its parts."""
    positions = _interior_positions(text)
    if not positions:
        return text.replace(" ", "-")
    cut = rng.choice(positions)
    joiner = rng.choice(["-", "-", "-\n", "\u2010"])
    return text[:cut] + joiner + text[cut:]


def perturb_case(text: str, rng: random.Random) -> str:
    choice = rng.randrange(3)
    if choice == 0:
        return text.upper()
    if choice == 1:
        return text.lower()
    return "".join(ch.upper() if rng.random() < 0.5 else ch.lower() for ch in text)


def perturb_lookalikes(text: str, rng: random.Random) -> str:
    """One to three letters swapped for look-alikes, or the whole name full-width or mathematical bold."""
    choice = rng.randrange(4)
    if choice == 0:
        return _fullwidth(text)
    if choice == 1:
        return _math_bold(text)
    letters = [index for index, ch in enumerate(text) if ch in HOMOGLYPHS]
    chars = list(text)
    for index in rng.sample(letters, min(len(letters), rng.randint(1, 3))):
        chars[index] = rng.choice(HOMOGLYPHS[chars[index]])
    return "".join(chars)


def perturb_invisible(text: str, rng: random.Random) -> str:
    positions = _interior_positions(text) or [len(text) // 2]
    chars = list(text)
    for cut in sorted(rng.sample(positions, min(len(positions), rng.randint(1, 3))), reverse=True):
        chars.insert(cut, rng.choice(INVISIBLES))
    return "".join(chars)


def perturb_markdown(text: str, rng: random.Random) -> str:
    """Emphasis, code ticks or a link around the name, or emphasis on part of it."""
    positions = _interior_positions(text)
    choice = rng.randrange(6)
    if choice == 0:
        return f"**{text}**"
    if choice == 1:
        return f"`{text}`"
    if choice == 2:
        return f"_{text}_"
    if choice == 3:
        return f"[{text}](https://example.com/models)"
    if choice == 4 and positions:
        cut = rng.choice(positions)
        return f"{text[:cut]}**{text[cut:]}**"
    if positions:
        cut = rng.choice(positions)
        return f"*{text[:cut]}*{text[cut:]}"
    return f"*{text}*"


PERTURBATIONS = {
    "spacing": perturb_spacing,
    "hyphenation": perturb_hyphenation,
    "case": perturb_case,
    "lookalikes": perturb_lookalikes,
    "invisible": perturb_invisible,
    "markdown": perturb_markdown,
}


def _embed(sentence: str, rng: random.Random) -> str:
    """The leaking sentence inside an answer: maybe a sentence before it, maybe one after."""
    parts = []
    if rng.random() < 0.5:
        parts.append(rng.choice(FILLER_SENTENCES))
    parts.append(sentence)
    if rng.random() < 0.5:
        parts.append(rng.choice(FILLER_SENTENCES))
    return " ".join(parts)


def perturbed_leaks(seed: int = PERTURBATION_SEED) -> list[dict]:
    """LEAKS_PER_CATEGORY seeded leaks per category: each perturbation applied to a name, a served id or a
    maker in a self-description, plus partial names, plain served ids, maker self-references and system
    prompt quotes, and pairs of perturbations."""
    rng = random.Random(seed)
    leaks = []

    def add(category: str, model: dict, text: str, surface: str, perturbed: str) -> None:
        leaks.append({
            "id": f"{category}-{len([leak for leak in leaks if leak['category'] == category]):03d}",
            "category": category, "model": model["name"], "surface": surface, "perturbed": perturbed, "answer": text,
        })  # fmt: skip

    def any_form(model: dict) -> tuple[str, str]:
        """A surface form of the model and its template: full name, served id or maker."""
        surfaces = SURFACES[model["name"]]
        kind = rng.choice(["full", "full", "served", "maker"])
        if kind == "served":
            return model["served_model_id"], rng.choice(SERVED_TEMPLATES)
        if kind == "maker":
            return rng.choice(surfaces["maker"]), rng.choice(MAKER_TEMPLATES).replace("{m}", "{x}")
        return rng.choice(surfaces["full"]), rng.choice(NAME_TEMPLATES)

    for category, perturb in PERTURBATIONS.items():
        for _ in range(LEAKS_PER_CATEGORY):
            model = rng.choice(REGISTRY)
            surface, template = any_form(model)
            perturbed = perturb(surface, rng)
            add(category, model, _embed(template.replace("{x}", perturbed), rng), surface, perturbed)
    for _ in range(LEAKS_PER_CATEGORY):
        model = rng.choice(REGISTRY)
        surface = rng.choice(SURFACES[model["name"]]["partial"])
        add("partial_name", model, _embed(rng.choice(NAME_TEMPLATES).replace("{x}", surface), rng), surface, surface)
    for _ in range(LEAKS_PER_CATEGORY):
        model = rng.choice(REGISTRY)
        surface = model["served_model_id"]
        add("served_id", model, _embed(rng.choice(SERVED_TEMPLATES).replace("{x}", surface), rng), surface, surface)
    for _ in range(LEAKS_PER_CATEGORY):
        model = rng.choice(REGISTRY)
        surface = rng.choice(SURFACES[model["name"]]["maker"])
        add(
            "maker_self_reference",
            model,
            _embed(rng.choice(MAKER_TEMPLATES).replace("{m}", surface), rng),
            surface,
            surface,
        )
    prompted = {"Qwen": "qwen2.5-7b-instruct"}
    for index in range(LEAKS_PER_CATEGORY):
        quote = PROMPT_QUOTES[index % len(PROMPT_QUOTES)]
        model_name = prompted["Qwen"] if "Qwen" in quote else "llama-3.1-8b-instruct"
        model = next(model for model in REGISTRY if model["name"] == model_name)
        if index >= len(PROMPT_QUOTES):  # the repeats are disguised too
            quote = rng.choice(list(PERTURBATIONS.values()))(quote, rng) if rng.random() < 0.3 else quote
        add("system_prompt_quote", model, _embed(quote, rng), quote, quote)
    for _ in range(LEAKS_PER_CATEGORY):
        model = rng.choice(REGISTRY)
        surface, template = any_form(model)
        first, second = rng.sample(list(PERTURBATIONS.values()), 2)
        perturbed = second(first(surface, rng), rng)
        add("combined", model, _embed(template.replace("{x}", perturbed), rng), surface, perturbed)
    return leaks


# Clean sentences a careless detector flags: ordinary words and brands that are also model or maker names.
# Written by hand; the bench reports them apart from the real clean answers.
HARD_NEGATIVES = [
    "You can search for it on Google or look it up on Wikipedia.",
    "Google Maps shows directions, traffic and nearby places.",
    "TensorFlow was developed by Google and released in 2015.",
    "I think PyTorch was developed by Meta, formerly Facebook.",
    "A llama is a domesticated South American camelid, related to the alpaca.",
    "Llamas live in the Andes and are used as pack animals.",
    "The vicuña is a wild relative of the llama.",
    "Claude Monet painted the Water Lilies series.",
    "Claude Debussy composed Clair de Lune.",
    "The mistral is a strong, cold wind that blows through the Rhône valley.",
    "Gemini is the third sign of the zodiac.",
    "NASA's Gemini programme flew ten crewed missions; Gemini 4 included the first American spacewalk.",
    "A meta-analysis combines the results of several studies.",
    "Metadata is data about data.",
    "That was a mistake, but we can fix it.",
    "An apple a day keeps the doctor away.",
    "Apple makes the iPhone and the Mac.",
    "Meta owns Facebook, Instagram and WhatsApp.",
    "Amazon Web Services rents out computing power.",
    "GPT-3 was released in 2020 and showed that scale matters.",
    "Large language models such as GPT-3 are trained on huge amounts of text.",
    "A sonnet is a poem of fourteen lines.",
    "Write a haiku with five, seven and five syllables.",
    "An opus is a numbered musical work.",
    "The golden ratio, phi, is about 1.618.",
    "The peregrine falcon is the fastest bird.",
    "Ali Baba and the Forty Thieves is a folk tale.",
    "I met a friend at the cafe yesterday.",
    "I learned this from a Google search.",
    "I use Google Docs for my notes.",
    "Open AI research is important for safety, many argue.",
    "The company OpenAI was founded in 2015.",
    "Anthropic is an AI safety company.",
    "Hugging Face hosts many open models.",
    "My favourite gem is the emerald.",
    "The orca is also called the killer whale.",
    "Aurora borealis lights up the northern sky.",
    "Hermes was the messenger of the Greek gods.",
    "Qwerty keyboards are the most common layout.",
    "I am a teacher, and I love my job.",
    "Mistral winds can reach 90 km/h.",
    "The Gemini twins are Castor and Pollux.",
]


def collect_perturbed() -> None:
    document = {
        "seed": PERTURBATION_SEED,
        "registry": REGISTRY,
        "leaks": perturbed_leaks(),
        "hard_negatives": [{"id": f"hard-{index:03d}", "answer": text} for index, text in enumerate(HARD_NEGATIVES)],
    }
    corpus_write(PERTURBED_PATH, document)
    print(f"{len(document['leaks'])} leaks, {len(HARD_NEGATIVES)} hard negatives in {PERTURBED_PATH.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["real", "perturbed", "all"], default="all")
    parser.add_argument("--limit", type=int, default=None, help="ask only the first N planned prompts (a trial)")
    args = parser.parse_args()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    if args.part in ("perturbed", "all"):
        collect_perturbed()
    if args.part in ("real", "all"):
        collect_real(limit=args.limit)


if __name__ == "__main__":
    main()
