"""The Vicuna v1.1 template against FastChat's exact v1.1 format, BOS included, in every renderer that uses it."""

import jinja2
import pytest

from inference.chat_format import chat_template_path, template_stops

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
CONVERSATION = [
    {"role": "user", "content": "Hello!"},
    {"role": "assistant", "content": "Hi. How can I help?"},
    {"role": "user", "content": "Name a colour."},
]
# FastChat's vicuna_v1.1 (SeparatorStyle.ADD_COLON_TWO, sep " ", sep2 "</s>"), after the tokenizer's BOS.
FASTCHAT_V11 = f"<s>{VICUNA_SYSTEM} USER: Hello! ASSISTANT: Hi. How can I help?</s>USER: Name a colour. ASSISTANT:"


def render(messages, add_generation_prompt=True, bos_token="<s>", **environment_options):
    # vLLM and Hugging Face render chat templates with trim_blocks and lstrip_blocks; plain Jinja without.
    environment = jinja2.Environment(**environment_options)
    template = environment.from_string(chat_template_path("vicuna_v1.1").read_text())
    return template.render(messages=messages, add_generation_prompt=add_generation_prompt, bos_token=bos_token)


@pytest.mark.parametrize("options", [{}, {"trim_blocks": True, "lstrip_blocks": True}], ids=["plain", "hf-style"])
def test_vicuna_template_renders_fastchats_v11_format_exactly_with_bos(options):
    assert render(CONVERSATION, **options) == FASTCHAT_V11


def test_vicuna_template_begins_with_the_bos_token_because_vllm_adds_no_special_tokens():
    assert chat_template_path("vicuna_v1.1").read_text().startswith("{{ bos_token }}")
    assert render([{"role": "user", "content": "Hi"}], bos_token="<bos>").startswith("<bos>A chat between")


def test_vicuna_template_uses_a_given_system_message_instead_of_the_default():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert render(messages) == "<s>Be brief. USER: Hi ASSISTANT:"


def test_vicuna_template_without_generation_prompt_ends_after_the_last_turn():
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    assert render(messages, add_generation_prompt=False) == f"<s>{VICUNA_SYSTEM} USER: a ASSISTANT: b</s>"


def test_requests_to_a_vicuna_templated_model_stop_before_it_writes_the_users_next_turn():
    assert template_stops("vicuna_v1.1") == ["</s>", "USER:"]
    assert template_stops("") == []


@pytest.mark.llama
def test_the_llama_cpp_server_renders_the_template_with_the_models_own_bos_token(settings):
    """What the Gemma server on CPU sends its model: the same file, with Gemma's <bos> as a special token."""
    from llama_cpp import Llama

    from inference.launch import bundled_gemma3_gguf
    from inference.llamacpp_serve import template_formatter

    llama = Llama(str(bundled_gemma3_gguf(settings.VAR_DIR / "models")), vocab_only=True, verbose=False)
    formatter = template_formatter(chat_template_path("vicuna_v1.1").read_text(), llama)
    prompt = formatter(messages=CONVERSATION).prompt
    assert prompt == FASTCHAT_V11.replace("<s>", "<bos>", 1)
    tokens = llama.tokenize(prompt.encode(), add_bos=False, special=True)
    assert tokens[0] == llama.token_bos() and tokens.count(llama.token_bos()) == 1
