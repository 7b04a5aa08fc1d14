"""The model registry: what visitors battle, and the OpenAI-compatible endpoints that serve it."""

from django.core.validators import MinValueValidator
from django.db import models


class ArenaModel(models.Model):
    class Hosting(models.TextChoices):
        REMOTE = "remote", "Remote OpenAI-compatible API"
        VLLM = "vllm", "Local vLLM server (GPU)"
        LLAMACPP = "llamacpp", "Local llama.cpp server (CPU)"

    name = models.CharField(max_length=120, unique=True, help_text="Public name, revealed after the vote.")
    organization = models.CharField(max_length=120, blank=True)
    license = models.CharField(max_length=120, blank=True)
    system_prompt = models.TextField(blank=True)
    temperature = models.FloatField(default=0.7, validators=[MinValueValidator(0.0)])
    top_p = models.FloatField(default=1.0, validators=[MinValueValidator(0.0)])
    max_new_tokens = models.PositiveIntegerField(default=512)
    context_length = models.PositiveIntegerField(default=2048)
    sampling_weight = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.0)], help_text="Relative chance of being drawn."
    )
    is_active = models.BooleanField(default=True, help_text="Inactive models are never drawn for battles.")
    is_historical = models.BooleanField(
        default=False, help_text="Imported from an outside battle log; has no endpoint."
    )

    # How the project itself hosts the model, if it does (`manage.py serve_models`).
    hosting = models.CharField(max_length=16, choices=Hosting.choices, default=Hosting.REMOTE)
    weights = models.CharField(max_length=500, blank=True, help_text="Local path or hub id of the weights.")
    chat_template = models.CharField(
        max_length=120, blank=True, help_text="Name of a template in inference/chat_templates/, e.g. vicuna_v1.1."
    )
    tensor_parallel_size = models.PositiveSmallIntegerField(default=1)
    gpu_memory_utilization = models.FloatField(default=0.9)

    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Endpoint(models.Model):
    """One replica serving a model; a model may have several."""

    model = models.ForeignKey(ArenaModel, on_delete=models.CASCADE, related_name="endpoints")
    base_url = models.URLField(max_length=300, help_text="OpenAI-compatible base URL ending in /v1.")
    served_model_id = models.CharField(max_length=300, help_text="The `model` field sent to the endpoint.")
    # Kept server-side only; the admin form never renders it back.
    api_key = models.CharField(max_length=500, blank=True)
    is_active = models.BooleanField(default=True)
    port = models.PositiveIntegerField(null=True, blank=True, help_text="Port of a locally launched server.")

    class Meta:
        ordering = ["model__name", "id"]

    def __str__(self) -> str:
        return f"{self.model.name} @ {self.base_url}"
