"""Will a model fit its GPUs? An estimate from weights × bits, KV cache and tensor-parallel size.

Plain arithmetic (no Django): the admin shows it for every vLLM model, and `serve_models` refuses a launch
that cannot fit with the same message, instead of letting vLLM fail minutes later with an out-of-memory.
"""

from __future__ import annotations

from dataclasses import dataclass

# Effective bits per weight. 4-bit schemes also store a 16-bit scale and zero point per group of 128
# weights (+0.25 bit), and keep embeddings and the output head in 16 bits, which the 4.25 rounds in.
QUANTIZED_BITS = {"awq": 4.25, "gptq": 4.25, "bitsandbytes": 4.25, "fp8": 8.0}
DTYPE_BITS = {"auto": 16.0, "float16": 16.0, "bfloat16": 16.0, "float32": 32.0}
# Quantization kernels that vLLM runs only on compute capability 8.0 and newer (Ampere: A100, A10, L4...).
NEEDS_AMPERE = {"awq", "gptq"}
# Per GPU, beyond weights and KV cache: CUDA context, activations and CUDA graphs (an estimate).
OVERHEAD_GB = 1.5
GB = 1e9


@dataclass(frozen=True)
class GpuFit:
    fits: bool
    weights_gb: float
    kv_cache_gb: float | None
    need_per_gpu_gb: float
    budget_per_gpu_gb: float | None
    message: str


def weights_gb(parameters_billion: float, *, quantization: str, dtype: str) -> float:
    bits = QUANTIZED_BITS.get(quantization) or DTYPE_BITS.get(dtype, 16.0)
    return parameters_billion * 1e9 * bits / 8 / GB


def kv_cache_gb(*, num_layers: int, hidden_size: int, context_length: int, dtype: str) -> float:
    """Keys and values of one full-length sequence (vLLM refuses to start without room for one).
    Assumes every attention head keeps its own keys and values, so it overestimates grouped-query models."""
    kv_bytes = 4 if dtype == "float32" else 2
    return 2 * num_layers * hidden_size * context_length * kv_bytes / GB


def gpu_fit(
    *,
    parameters_billion: float | None,
    quantization: str,
    dtype: str,
    tensor_parallel_size: int,
    context_length: int,
    num_layers: int | None,
    hidden_size: int | None,
    gpu_memory_gb: float | None,
    gpu_memory_utilization: float,
    gpus_available: int | None = None,
    compute_capability: float | None = None,
) -> GpuFit:
    """Whether the model fits `tensor_parallel_size` GPUs of `gpu_memory_gb` each, and why not."""
    if not parameters_billion:
        return GpuFit(True, 0.0, None, 0.0, None, "unknown: set the parameter count to check the fit")
    tp = max(tensor_parallel_size, 1)
    weights = weights_gb(parameters_billion, quantization=quantization, dtype=dtype)
    kv = None
    if num_layers and hidden_size:
        kv = kv_cache_gb(num_layers=num_layers, hidden_size=hidden_size, context_length=context_length, dtype=dtype)
    need = (weights + (kv or 0.0)) / tp + OVERHEAD_GB
    budget = gpu_memory_gb * gpu_memory_utilization if gpu_memory_gb else None
    scheme = quantization.upper() if quantization else dtype
    summary = f"{scheme} weights {weights:.1f} GB" + (f" + KV cache {kv:.1f} GB" if kv is not None else "")
    summary += f", {need:.1f} GB per GPU at tensor-parallel {tp}"
    if gpus_available is not None and tp > gpus_available:
        return GpuFit(False, weights, kv, need, budget, f"needs {tp} GPUs, this host has {gpus_available}")
    if quantization in NEEDS_AMPERE and compute_capability is not None and compute_capability < 8.0:
        return GpuFit(
            False, weights, kv, need, budget,
            f"{quantization.upper()} needs GPU compute capability 8.0 or newer; this GPU has {compute_capability}",
        )  # fmt: skip
    if budget is None:
        return GpuFit(True, weights, kv, need, None, f"{summary}; GPU memory unknown")
    if need > budget:
        advice = "quantize it (AWQ/GPTQ) or raise the tensor-parallel size"
        message = f"does not fit: {summary}, but each GPU offers {budget:.1f} GB; {advice}"
        return GpuFit(False, weights, kv, need, budget, message)
    return GpuFit(True, weights, kv, need, budget, f"fits: {summary} of {budget:.1f} GB")
