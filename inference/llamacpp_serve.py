"""`python -m inference.llamacpp_serve --chat-template FILE -- LLAMA_SERVER_ARGS...`

llama-cpp-python's OpenAI-compatible server, with the chat format rendered from one of our Jinja template
files (the same file `vllm serve --chat-template` gets), so a model served on CPU sees exactly the prompt
a GPU host would give it. llama-cpp-python takes a template only from the GGUF's metadata or a Hugging
Face tokenizer_config.json (whose handler ignores `add_generation_prompt`), so this registers the file as
a chat format of its own, then runs the stock server with `--chat_format` set to it. The template's
`bos_token` and `eos_token` are the loaded model's own.
"""

import argparse
import sys
from pathlib import Path

CHAT_FORMAT_NAME = "arena-template-file"


def template_formatter(template: str, llama):
    """A chat formatter rendering `template` with the loaded model's own BOS and EOS tokens."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    return Jinja2ChatFormatter(
        template=template,
        bos_token=llama.detokenize([llama.token_bos()], special=True).decode(),
        eos_token=llama.detokenize([llama.token_eos()], special=True).decode(),
        add_generation_prompt=True,
    )


def template_chat_handler(template: str):
    """A llama-cpp-python chat handler rendering `template`, built on first use (it needs the model)."""
    from llama_cpp.llama_chat_format import chat_formatter_to_chat_completion_handler

    built = {}

    def handler(*, llama, **kwargs):
        if "handler" not in built:
            built["handler"] = chat_formatter_to_chat_completion_handler(template_formatter(template, llama))
        return built["handler"](llama=llama, **kwargs)

    return handler


def main(argv: list[str]) -> None:
    from llama_cpp.llama_chat_format import LlamaChatCompletionHandlerRegistry
    from llama_cpp.server.__main__ import main as serve

    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chat-template", type=Path, required=True)
    options = parser.parse_args(argv[:split])
    LlamaChatCompletionHandlerRegistry().register_chat_completion_handler(
        CHAT_FORMAT_NAME, template_chat_handler(options.chat_template.read_text()), overwrite=True
    )
    sys.argv = ["llama_cpp.server", *argv[split + 1 :], "--chat_format", CHAT_FORMAT_NAME]
    serve()


if __name__ == "__main__":
    main(sys.argv[1:])
