import jinja2

from inference.launch import chat_template_path

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


def render(messages, add_generation_prompt=True):
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(chat_template_path("vicuna_v1.1").parent)))
    template = environment.get_template("vicuna_v1.1.jinja")
    return template.render(messages=messages, add_generation_prompt=add_generation_prompt)


def test_vicuna_template_renders_a_multi_turn_conversation_exactly():
    messages = [
        {"role": "user", "content": "Hello!"},
        {"role": "assistant", "content": "Hi. How can I help?"},
        {"role": "user", "content": "Name a colour."},
    ]
    assert render(messages) == (
        f"{VICUNA_SYSTEM} USER: Hello! ASSISTANT: Hi. How can I help?</s>USER: Name a colour. ASSISTANT:"
    )


def test_vicuna_template_uses_a_given_system_message_instead_of_the_default():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert render(messages) == "Be brief. USER: Hi ASSISTANT:"


def test_vicuna_template_without_generation_prompt_ends_after_the_last_turn():
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    assert render(messages, add_generation_prompt=False) == f"{VICUNA_SYSTEM} USER: a ASSISTANT: b</s>"
