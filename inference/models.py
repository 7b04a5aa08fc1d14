"""The model registry: what visitors battle, and the OpenAI-compatible endpoints that serve it."""

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from inference.chat_format import chat_template_names
from inference.context import MIN_ANSWER_TOKENS, estimate_tokens
from inference.fields import EncryptedTextField

# Values that become a model server's command line (and a line of supervisord's configuration): a line break
# there would end the line and start a section of the admin's choosing.
no_control_characters = RegexValidator(r"\A[^\x00-\x1f\x7f]*\Z", "No line breaks or other control characters.")
LOCAL_HOSTING = ("vllm", "llamacpp")
# A context below this is a slip (8 or 128 typed for 8K or 128K): every prompt would be refused, the arena's
# prompts being checked against every drawable model (battles.services._require_room).
MIN_CONTEXT_LENGTH = 512


def chat_template_known(name: str) -> None:
    """A chat template name must be one in inference/chat_templates/: `make run` builds the servers' command
    lines from it, and an unknown name stopped the whole arena from starting."""
    known = chat_template_names()
    if name and name not in known:
        raise ValidationError(f"No chat template named {name!r}; known: {', '.join(known) or 'none'}.")


def plain_base_url(url: str) -> None:
    """The arena appends /chat/completions and /models to a base URL: a query or a fragment would take them in
    (".../v1?x=" + "/models" asks .../v1 itself, with a query), and credentials in it (user:key@) are a key
    outside its encrypted field, shown wherever the URL is."""
    parts = urlsplit(url)
    if "?" in url or "#" in url:
        raise ValidationError("A base URL takes no query (?) or fragment (#): the arena appends its paths to it.")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("Put the API key in its own field (kept encrypted), not in the URL (user:key@).")


class ArenaModel(models.Model):
    class Quantization(models.TextChoices):
        NONE = "", "None (weights as stored)"
        AWQ = "awq", "AWQ (4-bit)"
        GPTQ = "gptq", "GPTQ (4-bit)"
        FP8 = "fp8", "FP8"
        BITSANDBYTES = "bitsandbytes", "bitsandbytes (4-bit)"

    class Dtype(models.TextChoices):
        AUTO = "auto", "auto"
        FLOAT16 = "float16", "float16"
        BFLOAT16 = "bfloat16", "bfloat16"
        FLOAT32 = "float32", "float32"

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
    max_new_tokens = models.PositiveIntegerField(default=512, validators=[MinValueValidator(1)])
    context_length = models.PositiveIntegerField(
        default=2048, validators=[MinValueValidator(MIN_CONTEXT_LENGTH)], help_text="In tokens (8K is 8192)."
    )
    sampling_weight = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.0)], help_text="Relative chance of being drawn."
    )
    is_active = models.BooleanField(default=True, help_text="Inactive models are never drawn for battles.")
    retired_at = models.DateTimeField(
        null=True, blank=True, help_text="Retired models stay on the leaderboard, marked retired, and are never drawn."
    )
    target_votes = models.PositiveIntegerField(
        default=0, help_text="Draw this model more often until it has this many votes (0: no boost)."
    )
    is_historical = models.BooleanField(
        default=False, help_text="Imported from an outside battle log; has no endpoint."
    )

    # How the project itself hosts the model, if it does (`manage.py serve_models`).
    hosting = models.CharField(max_length=16, choices=Hosting.choices, default=Hosting.REMOTE)
    weights = models.CharField(
        max_length=500, blank=True, validators=[no_control_characters], help_text="Local path or hub id of the weights."
    )
    chat_template = models.CharField(
        max_length=120, blank=True, validators=[chat_template_known],
        help_text="Name of a template in inference/chat_templates/, e.g. vicuna_v1.1.",
    )  # fmt: skip
    tensor_parallel_size = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    gpu_memory_utilization = models.FloatField(
        default=0.9, validators=[MinValueValidator(0.05), MaxValueValidator(1.0)], help_text="A fraction: 0.9, not 90."
    )
    quantization = models.CharField(
        max_length=20, choices=Quantization.choices, blank=True, help_text="Passed to vllm serve --quantization."
    )
    dtype = models.CharField(max_length=12, choices=Dtype.choices, default=Dtype.AUTO)
    # What the GPU-fit estimate needs (shown in the admin; a launch that cannot fit is refused).
    parameters_billion = models.FloatField(null=True, blank=True, help_text="Parameter count in billions.")
    num_layers = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Transformer layers (KV cache).")
    hidden_size = models.PositiveIntegerField(null=True, blank=True, help_text="Hidden size (KV cache).")
    gpu_memory_gb = models.FloatField(
        null=True, blank=True, help_text="Memory of each GPU it runs on, in GB (blank: read from nvidia-smi)."
    )

    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    # Room a short prompt needs beside the system prompt and the shortest answer, for the check below.
    SHORT_PROMPT_TOKENS = 64

    def clean(self) -> None:
        """A vLLM model names its weights (else its server is `vllm serve ""`, which never starts). The system
        prompt must leave room for a short prompt and an answer: else every prompt of the arena is refused
        (each is checked against every drawable model), with nothing to say why."""
        if self.hosting == self.Hosting.VLLM and not self.weights.strip():
            raise ValidationError({"weights": "A vLLM-hosted model needs its weights: a local path or a hub id."})
        if not self.context_length or self.context_length < MIN_CONTEXT_LENGTH:
            return  # the field's own check says so
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        needed = estimate_tokens(system) + self.SHORT_PROMPT_TOKENS + MIN_ANSWER_TOKENS
        if needed > self.context_length:
            raise ValidationError(
                {"system_prompt": f"This system prompt takes about {estimate_tokens(system)} of the model's "
                 f"{self.context_length}-token context, leaving no room for a prompt and an answer."}
            )  # fmt: skip


class Endpoint(models.Model):
    """One replica serving a model; a model may have several."""

    model = models.ForeignKey(ArenaModel, on_delete=models.CASCADE, related_name="endpoints")
    base_url = models.URLField(
        max_length=300, validators=[plain_base_url], help_text="OpenAI-compatible base URL ending in /v1."
    )
    served_model_id = models.CharField(
        max_length=300, validators=[no_control_characters], help_text="The `model` field sent to the endpoint."
    )
    # Encrypted at rest, kept server-side only; the admin form never renders it back.
    api_key = EncryptedTextField(blank=True)
    is_active = models.BooleanField(default=True)
    port = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="Port of a locally launched server (its base URL must name the same port).",
    )  # fmt: skip
    max_concurrency = models.PositiveIntegerField(
        default=4,
        validators=[MinValueValidator(1)],
        help_text="Most answers this replica streams at once; battles beyond that go to another replica or wait.",
    )

    class Meta:
        ordering = ["model__name", "id"]

    def __str__(self) -> str:
        return f"{self.model.name} @ {self.base_url}"

    @classmethod
    def launched(cls) -> models.QuerySet:
        """The endpoints whose servers `make run` starts here (inference/launch.py:model_servers), with models."""
        return cls.objects.select_related("model").filter(
            is_active=True, port__isnull=False, model__is_active=True, model__retired_at__isnull=True,
            model__hosting__in=LOCAL_HOSTING,
        )  # fmt: skip

    def url_port(self) -> int | None:
        """The port the base URL names (None if it names none, or is not a URL)."""
        try:
            return urlsplit(self.base_url).port
        except ValueError:
            return None

    def clean(self) -> None:
        """A locally launched server has a port, its own, and its base URL points at it: otherwise its server
        is never started, or battles are answered by whatever listens there (another model's server answers
        any model name) and counted for this model."""
        try:
            hosting = self.model.hosting
        except ArenaModel.DoesNotExist:  # no model chosen yet: the form says so itself
            return
        if hosting not in LOCAL_HOSTING:
            return
        if self.port is None:
            # Without one `make run` never starts its server (Endpoint.launched), and nothing would say so.
            raise ValidationError(
                {"port": f"A locally hosted model's server needs a port to be started on: the one its base URL names"
                 f" ({self.url_port() or 'none given'})."}
            )  # fmt: skip
        if self.url_port() != self.port:
            raise ValidationError(
                {
                    "base_url": f"A locally launched server listens on port {self.port}: its base "
                    f"URL must name that port (http://127.0.0.1:{self.port}/v1)."
                }
            )
        other = Endpoint.launched().filter(port=self.port).exclude(pk=self.pk).first()
        if self.is_active and other is not None:
            raise ValidationError({"port": f"Port {self.port} is already {other.model.name}'s server's."})


class SamplingPlan(models.Model):
    """How pairs are drawn, as computed from the newest leaderboard snapshot. The newest row is used."""

    created = models.DateTimeField(auto_now_add=True)
    # [[model_a_id, model_b_id, probability], ...] over unordered pairs; models missing are never drawn.
    pair_probabilities = models.JSONField()
    summary = models.JSONField(default=dict, blank=True, help_text="Plain-words figures for the about page.")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"sampling plan #{self.pk} ({self.created:%Y-%m-%d %H:%M})"
