import pytest
from django.core.management import call_command

from inference.launch import bundled_smollm2_gguf, chat_template_path, vllm_command
from inference.models import ArenaModel
from inference.services import default_models_register


def test_bundled_smollm2_gguf_ships_inside_the_package():
    path = bundled_smollm2_gguf()
    assert path.suffix == ".gguf"
    assert path.stat().st_size > 50_000_000


@pytest.mark.django_db
def test_vllm_command_passes_the_vicuna_template_and_gpu_settings():
    model = ArenaModel.objects.create(
        name="vicuna-7b", hosting=ArenaModel.Hosting.VLLM, weights="lmsys/vicuna-7b-v1.5",
        chat_template="vicuna_v1.1", tensor_parallel_size=2, gpu_memory_utilization=0.8, context_length=4096,
    )  # fmt: skip
    argv = vllm_command(model, port=8100, host="127.0.0.1", served_model_id="vicuna-7b")
    assert argv[:3] == ["vllm", "serve", "lmsys/vicuna-7b-v1.5"]
    joined = " ".join(argv)
    assert f"--chat-template {chat_template_path('vicuna_v1.1')}" in joined
    assert "--tensor-parallel-size 2" in joined
    assert "--gpu-memory-utilization 0.8" in joined
    assert "--served-model-name vicuna-7b" in joined
    assert "--max-model-len 4096" in joined


@pytest.mark.django_db
def test_serve_models_dry_run_lists_one_server_per_local_endpoint(capsys):
    default_models_register(base_port=9181)
    call_command("serve_models", "--dry-run")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert all("llama_cpp.server" in line for line in lines)
    assert {"--port 9181", "--port 9182"} <= {
        " ".join(line.split()[i : i + 2]) for line in lines for i in range(len(line.split()))
    }


def test_unknown_chat_template_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="no chat template named 'nope'"):
        chat_template_path("nope")


@pytest.mark.django_db
def test_vllm_models_are_skipped_with_a_reason_on_a_machine_without_a_gpu(capsys):
    from inference.launch import server_commands
    from inference.services import model_register

    model_register(name="vicuna-7b", base_url="http://127.0.0.1:8100/v1", served_model_id="vicuna-7b",
                   hosting="vllm", weights="lmsys/vicuna-7b-v1.5", chat_template="vicuna_v1.1", port=8100)  # fmt: skip
    default_models_register(base_port=9281)
    commands = {c.label.split(" (")[0]: c for c in server_commands(gpu=False)}
    assert commands["vicuna-7b"].skip_reason == "no GPU on this machine"
    assert all(not c.skip_reason for name, c in commands.items() if name != "vicuna-7b")
    with_gpu = {c.label.split(" (")[0]: c for c in server_commands(gpu=True)}
    assert with_gpu["vicuna-7b"].argv[:2] == ["vllm", "serve"]


@pytest.mark.django_db
def test_models_defaults_uses_the_configured_llama_port(settings):
    settings.LLAMACPP_BASE_PORT = 9391
    call_command("models", "defaults")
    assert sorted(ArenaModel.objects.values_list("endpoints__port", flat=True)) == [9391, 9392]


@pytest.mark.django_db
def test_serve_models_refuses_clearly_when_a_port_is_taken():
    import socket

    from django.core.management import CommandError

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        default_models_register(base_port=port)
        with pytest.raises(CommandError, match=f"already in use: http://127.0.0.1:{port}/v1"):
            call_command("serve_models")
