"""A change to the fleet saved in this process (the admin, a command) shows up in its cached view at once;
other processes read it again within FLEET_CACHE_SECONDS."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from inference.models import ArenaModel, Endpoint, SamplingPlan
from inference.selectors import forget_cached_fleet


@receiver([post_save, post_delete], sender=ArenaModel)
@receiver([post_save, post_delete], sender=Endpoint)
@receiver([post_save, post_delete], sender=SamplingPlan)
def fleet_changed(**kwargs) -> None:
    forget_cached_fleet()
