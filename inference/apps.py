from django.apps import AppConfig


class InferenceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "inference"
    verbose_name = "Models and endpoints"

    def ready(self):
        from inference import checks, signals  # noqa: F401 (registers the checks, connects the receivers)
