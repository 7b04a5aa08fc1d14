"""Chat templates the project ships (Jinja files in `chat_templates/`), and what a request must add for them."""

from pathlib import Path

CHAT_TEMPLATES_DIR = Path(__file__).resolve().parent / "chat_templates"

# Stop strings sent with every request to a model served through a template. A base model has no
# end-of-turn habit of its own: without these it goes on to write the user's next line itself.
TEMPLATE_STOPS = {"vicuna_v1.1": ["</s>", "USER:"]}


# Tokens a template adds that the messages don't show (Vicuna's default system line), for context fitting.
TEMPLATE_OVERHEAD_TOKENS = {"vicuna_v1.1": 60}


# The system line a template uses when a conversation has none (the model sees it; the blindness check
# must know it too).
TEMPLATE_DEFAULT_SYSTEM = {
    "vicuna_v1.1": "A chat between a curious user and an artificial intelligence assistant. The assistant gives "
    "helpful, detailed, and polite answers to the user's questions."
}


def template_default_system(name: str) -> str:
    return TEMPLATE_DEFAULT_SYSTEM.get(name, "")


def template_overhead_tokens(name: str) -> int:
    return TEMPLATE_OVERHEAD_TOKENS.get(name, 0)


def chat_template_names() -> list[str]:
    """The templates a model may name (the .jinja files in inference/chat_templates/)."""
    return sorted(path.stem for path in CHAT_TEMPLATES_DIR.glob("*.jinja"))


def chat_template_path(name: str) -> Path:
    path = CHAT_TEMPLATES_DIR / f"{name}.jinja"
    if not name or "/" in name or not path.is_file():
        raise FileNotFoundError(f"no chat template named {name!r} in {CHAT_TEMPLATES_DIR}")
    return path


def template_stops(name: str) -> list[str]:
    return list(TEMPLATE_STOPS.get(name, []))
