from django import forms
from django.contrib import admin

from inference.models import ArenaModel, Endpoint


class EndpointForm(forms.ModelForm):
    """The API key is write-only: it is never rendered back, and a blank field keeps the stored one."""

    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Leave blank to keep the stored key.",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Remove the stored key.")

    class Meta:
        model = Endpoint
        fields = ["base_url", "served_model_id", "api_key", "clear_api_key", "is_active", "port"]

    def clean_api_key(self):
        new_key = self.cleaned_data.get("api_key")
        if self.instance.pk and not new_key:
            return Endpoint.objects.get(pk=self.instance.pk).api_key
        return new_key or ""

    def save(self, commit=True):
        if self.cleaned_data.get("clear_api_key"):
            self.instance.api_key = ""
        return super().save(commit=commit)


class EndpointInline(admin.TabularInline):
    model = Endpoint
    form = EndpointForm
    extra = 0


@admin.register(ArenaModel)
class ArenaModelAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "hosting", "sampling_weight", "is_active", "is_historical"]
    list_filter = ["is_active", "is_historical", "hosting"]
    search_fields = ["name", "organization"]
    inlines = [EndpointInline]
