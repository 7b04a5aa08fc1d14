"""The process's cached view of the fleet follows changes saved in this process at once."""

import pytest
from django.utils import timezone

from inference.models import SamplingPlan
from inference.selectors import drawable_candidates, replicas_of_models, sampling_plan_latest
from tests.factories import make_model

pytestmark = pytest.mark.django_db


def test_a_saved_change_to_a_model_an_endpoint_or_the_plan_shows_in_the_cached_fleet_at_once():
    alpha, beta = make_model("alpha"), make_model("beta")
    assert sorted(m.name for m in drawable_candidates()) == ["alpha", "beta"]
    assert sampling_plan_latest() is None

    alpha.retired_at = timezone.now()
    alpha.save()
    assert [m.name for m in drawable_candidates()] == ["beta"]

    endpoint = beta.endpoints.get()
    endpoint.is_active = False
    endpoint.save()
    assert replicas_of_models([beta.pk]) == {} and drawable_candidates() == []

    plan = SamplingPlan.objects.create(pair_probabilities=[[alpha.pk, beta.pk, 1.0]], summary={})
    assert sampling_plan_latest() == plan
    plan.delete()
    assert sampling_plan_latest() is None
