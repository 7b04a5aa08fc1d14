import pytest
from django.core.management import CommandError, call_command

from inference.models import ArenaModel

pytestmark = pytest.mark.django_db


def test_models_add_then_list_shows_the_model_without_its_key(capsys):
    call_command("models", "add", "--name", "gpt-x", "--base-url", "https://api.example.com/v1",
                 "--served-model-id", "gpt-x-2025", "--api-key", "sk-very-secret", "--organization", "Example")  # fmt: skip
    call_command("models", "list")
    out = capsys.readouterr().out
    assert "gpt-x" in out and "https://api.example.com/v1" in out and "key set" in out
    assert "sk-very-secret" not in out
    assert ArenaModel.objects.get(name="gpt-x").endpoints.get().api_key == "sk-very-secret"


def test_models_check_fails_loudly_for_a_down_endpoint(capsys):
    call_command("models", "add", "--name", "down", "--base-url", "http://127.0.0.1:9/v1", "--served-model-id", "d")
    with pytest.raises(CommandError, match="1 of 1 endpoint"):
        call_command("models", "check", "down", "--timeout", "2")
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.llama
def test_models_check_reports_latency_of_the_real_llama_server(llama_server, capsys):
    call_command(
        "models", "add", "--name", "smol", "--base-url", llama_server, "--served-model-id", "smollm2-135m-instruct"
    )
    call_command("models", "check", "smol")
    assert "OK" in capsys.readouterr().out


def test_models_defaults_registers_only_when_the_registry_is_empty(capsys):
    call_command("models", "defaults")
    call_command("models", "defaults")
    assert ArenaModel.objects.count() == 2
    assert "nothing to do" in capsys.readouterr().out


def test_a_base_url_with_a_query_is_refused_before_anything_is_stored():
    with pytest.raises(CommandError, match="no query"):
        call_command("models", "add", "--name", "r", "--base-url", "http://169.254.169.254/latest/meta-data/?x=",
                     "--served-model-id", "r")  # fmt: skip
    assert not ArenaModel.objects.exists()


def test_vllm_model_needs_weights():
    with pytest.raises(CommandError, match="--weights: A vLLM-hosted model needs its weights"):
        call_command("models", "add", "--name", "v", "--base-url", "http://127.0.0.1:8100/v1",
                     "--served-model-id", "v", "--hosting", "vllm")  # fmt: skip


@pytest.mark.parametrize("hosting", ["vllm", "llamacpp"])
def test_a_locally_hosted_model_needs_a_port_or_make_run_would_never_start_it(hosting):
    with pytest.raises(CommandError, match="--port: A locally hosted model's server needs a port .* \\(8100\\)"):
        call_command("models", "add", "--name", "v", "--base-url", "http://127.0.0.1:8100/v1",
                     "--served-model-id", "v", "--hosting", hosting, "--weights", "org/model")  # fmt: skip
    assert not ArenaModel.objects.exists()
