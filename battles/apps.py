from django.apps import AppConfig


class BattlesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "battles"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from battles.selectors import forget_leak_detector
        from inference.models import ArenaModel, Endpoint

        def registry_changed(**kwargs) -> None:
            # A model added or renamed in this process is looked for in answers at once, not after up to a
            # minute of battles in which its name was not checked (other processes: within the minute).
            forget_leak_detector()

        for signal in (post_save, post_delete):
            for sender in (ArenaModel, Endpoint):
                signal.connect(registry_changed, sender=sender, weak=False, dispatch_uid=f"leaks-{sender.__name__}")
