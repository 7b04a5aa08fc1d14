import pytest
from django.urls import reverse

from tests.factories import make_model

pytestmark = pytest.mark.django_db


def test_admin_never_renders_a_stored_api_key_and_keeps_it_when_left_blank(admin_client):
    model = make_model("keyed")
    endpoint = model.endpoints.get()
    endpoint.api_key = "sk-should-never-leave-the-server"
    endpoint.save()
    url = reverse("admin:inference_arenamodel_change", args=[model.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    assert b"sk-should-never-leave-the-server" not in page.content

    form = {
        "name": "keyed", "organization": "", "license": "", "system_prompt": "", "temperature": "0.7",
        "top_p": "1.0", "max_new_tokens": "512", "context_length": "2048", "sampling_weight": "1.0",
        "is_active": "on", "hosting": "remote", "weights": "", "chat_template": "", "tensor_parallel_size": "1",
        "gpu_memory_utilization": "0.9",
        "endpoints-TOTAL_FORMS": "1", "endpoints-INITIAL_FORMS": "1", "endpoints-MIN_NUM_FORMS": "0",
        "endpoints-MAX_NUM_FORMS": "1000", "endpoints-0-id": str(endpoint.pk), "endpoints-0-model": str(model.pk),
        "endpoints-0-base_url": endpoint.base_url, "endpoints-0-served_model_id": "renamed",
        "endpoints-0-api_key": "", "endpoints-0-is_active": "on",
    }  # fmt: skip
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content[:2000]
    endpoint.refresh_from_db()
    assert endpoint.served_model_id == "renamed"
    assert endpoint.api_key == "sk-should-never-leave-the-server"
