"""`manage.py models add|list|check|defaults`: manage the model registry from the shell."""

import asyncio

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from inference import selectors, services
from inference.client import close_pooled_client
from inference.models import ArenaModel, Endpoint


class Command(BaseCommand):
    help = "Register, list and check arena models and their endpoints."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Register a model, or add an endpoint (replica) to one.")
        add.add_argument("--name", required=True)
        add.add_argument("--base-url", required=True, help="OpenAI-compatible base URL, ending in /v1.")
        add.add_argument("--served-model-id", required=True)
        add.add_argument("--api-key", default="", help="Stored server-side only.")
        add.add_argument("--organization", default="")
        add.add_argument("--license", default="")
        add.add_argument("--system-prompt", default="")
        add.add_argument("--temperature", type=float, default=0.7)
        add.add_argument("--top-p", type=float, default=1.0)
        add.add_argument("--max-new-tokens", type=int, default=512)
        add.add_argument("--context-length", type=int, default=2048)
        add.add_argument("--weight", type=float, default=1.0, help="Sampling weight.")
        add.add_argument("--hosting", choices=ArenaModel.Hosting.values, default=ArenaModel.Hosting.REMOTE)
        add.add_argument("--weights", default="", help="Local path or hub id (vllm/llamacpp hosting).")
        add.add_argument("--chat-template", default="", help="e.g. vicuna_v1.1")
        add.add_argument("--port", type=int, default=None, help="Port for a locally launched server.")
        sub.add_parser("list", help="List models and endpoints.")
        check = sub.add_parser("check", help="Send a real request to each endpoint; report latency or error.")
        check.add_argument("names", nargs="*")
        check.add_argument("--timeout", type=float, default=30.0)
        sub.add_parser(
            "defaults", help="Register the two bundled models (SmolLM2-135M-Instruct, Gemma-3-270M) if no model exists."
        )

    def handle(self, *args, action, **options):
        getattr(self, f"handle_{action}")(**options)

    def handle_add(self, **o):
        try:
            model = services.model_register(
                name=o["name"], base_url=o["base_url"], served_model_id=o["served_model_id"], api_key=o["api_key"],
                organization=o["organization"], license=o["license"], system_prompt=o["system_prompt"],
                temperature=o["temperature"], top_p=o["top_p"], max_new_tokens=o["max_new_tokens"],
                context_length=o["context_length"], sampling_weight=o["weight"], hosting=o["hosting"],
                weights=o["weights"], chat_template=o["chat_template"], port=o["port"],
            )  # fmt: skip
        except ValidationError as exc:
            raise CommandError(_as_options(exc)) from None
        self.stdout.write(f"registered {model.name} ({model.endpoints.count()} endpoint(s))")

    def handle_list(self, **o):
        unreadable = set(selectors.endpoints_with_unreadable_keys())
        for model in ArenaModel.objects.prefetch_related("endpoints"):
            state = "active" if model.is_active else "inactive"
            if model.is_historical:
                state += ", historical"
            self.stdout.write(
                f"{model.name}  [{model.organization or '-'}; {model.hosting}; weight {model.sampling_weight}; {state}]"
            )
            for endpoint in model.endpoints.all():
                key = "key set" if endpoint.api_key else "no key"
                if endpoint.pk in unreadable:
                    key = "key unreadable: the encryption key that stored it is not configured"
                self.stdout.write(
                    f"    {endpoint.base_url}  model={endpoint.served_model_id}  ({key}{'' if endpoint.is_active else ', inactive'})"
                )

    def handle_check(self, *, names, timeout, **o):
        endpoints = Endpoint.objects.select_related("model").filter(is_active=True)
        if names:
            endpoints = endpoints.filter(model__name__in=names)
        endpoints = list(endpoints)
        if not endpoints:
            raise CommandError("no matching active endpoint")
        failures = 0
        for endpoint in endpoints:
            result = asyncio.run(_check(endpoint, timeout))
            if result.ok:
                self.stdout.write(
                    f"OK    {endpoint}  latency {result.latency:.3f}s  ttft {result.ttft}s  reply {result.reply!r}"
                )
            else:
                failures += 1
                self.stdout.write(f"FAIL  {endpoint}  {result.error}")
        if failures:
            raise CommandError(f"{failures} of {len(endpoints)} endpoint(s) failed")

    def handle_defaults(self, **o):
        if ArenaModel.objects.filter(is_historical=False).exists():
            self.stdout.write("models already registered; nothing to do")
            return
        for model in services.default_models_register(
            host=settings.LLAMACPP_HOST, base_port=settings.LLAMACPP_BASE_PORT
        ):
            self.stdout.write(f"registered {model.name}")


async def _check(endpoint, timeout: float):
    """One check on a short-lived event loop, closing that loop's pooled HTTP session after it."""
    try:
        return await services.endpoint_check(endpoint, timeout=timeout)
    finally:
        await close_pooled_client()


# The model's and endpoint's fields whose `models add` option is named otherwise.
OPTION_OF_FIELD = {"sampling_weight": "weight"}


def _as_options(error: ValidationError) -> str:
    """The model's own checks (the admin's too) as the command's options: "--port: ..." for a field's."""
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    return " ".join(
        message if field == "__all__" else f"--{OPTION_OF_FIELD.get(field, field).replace('_', '-')}: {message}"
        for field, messages in error.message_dict.items()
        for message in messages
    )
