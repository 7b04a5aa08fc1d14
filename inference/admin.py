from datetime import UTC, datetime
from urllib.parse import urlsplit

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin
from django.utils import timezone

from inference import launch, routing, services
from inference.models import ArenaModel, Endpoint, SamplingPlan
from inference.selectors import replica_of


def _origin(url: str) -> tuple[str, str | None, int | None]:
    """Where a URL sends what it is given: scheme, host and port (the scheme's own when none is written)."""
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)


class EndpointForm(forms.ModelForm):
    """The API key is write-only: it is never rendered back, and a blank field keeps the stored one, unless the
    URL now points somewhere else (then it must be typed again or removed: the key goes to that address)."""

    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Leave blank to keep the stored key.",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Remove the stored key.")

    class Meta:
        model = Endpoint
        fields = ["base_url", "served_model_id", "api_key", "clear_api_key", "is_active", "port", "max_concurrency"]

    def clean_api_key(self):
        new_key = self.cleaned_data.get("api_key")
        # A key typed, as the form reads it (stripped): a space alone is none, and keeps the stored key.
        self.key_typed = bool(new_key)
        if self.instance.pk and not new_key:
            return Endpoint.objects.get(pk=self.instance.pk).api_key
        return new_key or ""

    def clean(self):
        cleaned = super().clean()
        typed = getattr(self, "key_typed", False)
        if typed and cleaned.get("clear_api_key"):
            # Clearing wins in save(): the key typed beside it was thrown away without a word.
            self.add_error("clear_api_key", "A new key is typed: untick this to store it, or empty the key field.")
            return cleaned
        if not self.instance.pk or typed or cleaned.get("clear_api_key") or "base_url" not in cleaned:
            return cleaned
        stored_url, stored_key = Endpoint.objects.values_list("base_url", "api_key").get(pk=self.instance.pk)
        # The write-only key could be taken by editing the URL alone: the next probe sent it to the new host.
        if stored_key and _origin(cleaned["base_url"]) != _origin(stored_url):
            self.add_error(
                "api_key",
                "The base URL now points to another host or port, and the stored key would be sent there: type "
                'the key again, or tick "clear API key" to remove it.',
            )
        return cleaned

    def save(self, commit=True):
        if self.cleaned_data.get("clear_api_key"):
            self.instance.api_key = ""
        return super().save(commit=commit)


def _live_states(endpoints: list[Endpoint]) -> dict[int, routing.ReplicaState]:
    """Health and in-flight load of these endpoints, in one look at the shared state."""
    states = async_to_sync(routing.replica_states)([replica_of(endpoint) for endpoint in endpoints])
    return {state.replica.endpoint_id: state for state in states}


class LiveStateColumns:
    """Read-only columns with an endpoint's live state: health, last error, recent TTFT, in-flight load."""

    def _state(self, endpoint: Endpoint) -> routing.ReplicaState | None:
        if endpoint.pk is None:
            return None
        cache = getattr(self, "_states", None)
        if cache is None or endpoint.pk not in cache:
            self._states = _live_states([endpoint])
        return self._states.get(endpoint.pk)

    @admin.display(description="state")
    def state(self, endpoint):
        state = self._state(endpoint)
        if state is None:
            return "-"
        if state.health.state == "down":
            wait = max(0, int(state.health.retry_at - timezone.now().timestamp()))
            return f"down (next trial in {wait}s)" if wait else "down (trial due)"
        return state.health.state

    @admin.display(description="in flight / cap")
    def load(self, endpoint):
        state = self._state(endpoint)
        return "-" if state is None else f"{state.in_flight} / {endpoint.max_concurrency}"

    @admin.display(description="recent TTFT")
    def recent_ttft(self, endpoint):
        state = self._state(endpoint)
        return "-" if state is None or state.health.ttft is None else f"{state.health.ttft:.2f}s"

    @admin.display(description="last error")
    def last_error(self, endpoint):
        state = self._state(endpoint)
        if state is None or not state.health.last_error:
            return "-"
        when = datetime.fromtimestamp(state.health.last_error_at, tz=UTC)
        return f"{when:%Y-%m-%d %H:%M:%S} UTC: {state.health.last_error}"


class EndpointInline(LiveStateColumns, admin.TabularInline):
    model = Endpoint
    form = EndpointForm
    extra = 0
    readonly_fields = ["state", "load", "recent_ttft", "last_error"]


@admin.register(ArenaModel)
class ArenaModelAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "hosting", "sampling_weight", "is_active", "retired_at", "is_historical"]
    list_filter = ["is_active", "is_historical", "hosting"]
    search_fields = ["name", "organization"]
    readonly_fields = ["gpu_fit"]
    inlines = [EndpointInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if form.instance.endpoints.filter(is_active=True).exists():
            services.historical_model_goes_live(form.instance)

    @admin.display(description="fits its GPUs?")
    def gpu_fit(self, model):
        if model.hosting != ArenaModel.Hosting.VLLM:
            return "not served by vLLM here"
        return launch.model_gpu_fit(model, launch.gpu_inventory()).message


@admin.register(Endpoint)
class EndpointAdmin(LiveStateColumns, admin.ModelAdmin):
    """Every replica with its live state (the fleet at a glance)."""

    form = EndpointForm
    list_display = ["__str__", "served_model_id", "is_active", "state", "load", "recent_ttft", "last_error"]
    list_filter = ["is_active", "model__hosting"]
    list_select_related = ["model"]
    readonly_fields = ["state", "load", "recent_ttft", "last_error"]

    def get_fields(self, request, obj=None):
        # A new endpoint needs its model (EndpointForm leaves it to the model's inline): without it, saving
        # one from this page failed on the database (a 500).
        fields = super().get_fields(request, obj)
        return fields if obj is not None or "model" in fields else ["model", *fields]

    def changeform_view(self, request, *args, **kwargs):
        # This admin object serves every request: the states the last list page read are not this page's.
        self._states = None
        return super().changeform_view(request, *args, **kwargs)

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        self._states = _live_states(list(changelist.result_list))  # one round trip for the whole page
        return changelist


@admin.register(SamplingPlan)
class SamplingPlanAdmin(admin.ModelAdmin):
    list_display = ["id", "created"]
    readonly_fields = ["created", "pair_probabilities", "summary"]
