import pytest
from django.urls import reverse

from tests.factories import make_model

pytestmark = pytest.mark.django_db


def keyed_model():
    """A remote model whose one endpoint has a stored API key; returns (model, endpoint)."""
    model = make_model("keyed")
    endpoint = model.endpoints.get()
    endpoint.api_key = "sk-should-never-leave-the-server"
    endpoint.save()
    return model, endpoint


def model_form(model, endpoint, **endpoint_fields) -> dict:
    """The model's admin form as posted, with its one endpoint inline (`endpoint_fields` override that's)."""
    form = {
        "name": model.name, "organization": "", "license": "", "system_prompt": "", "temperature": "0.7",
        "top_p": "1.0", "max_new_tokens": "512", "context_length": "2048", "sampling_weight": "1.0",
        "is_active": "on", "hosting": "remote", "weights": "", "chat_template": "", "tensor_parallel_size": "1",
        "gpu_memory_utilization": "0.9", "target_votes": "0", "quantization": "", "dtype": "auto",
        "endpoints-TOTAL_FORMS": "1", "endpoints-INITIAL_FORMS": "1", "endpoints-MIN_NUM_FORMS": "0",
        "endpoints-MAX_NUM_FORMS": "1000", "endpoints-0-id": str(endpoint.pk), "endpoints-0-model": str(model.pk),
        "endpoints-0-base_url": endpoint.base_url, "endpoints-0-served_model_id": endpoint.served_model_id,
        "endpoints-0-api_key": "", "endpoints-0-is_active": "on", "endpoints-0-max_concurrency": "4",
    }  # fmt: skip
    return {**form, **{f"endpoints-0-{name}": value for name, value in endpoint_fields.items()}}


def test_admin_never_renders_a_stored_api_key_and_keeps_it_when_left_blank(admin_client):
    model, endpoint = keyed_model()
    url = reverse("admin:inference_arenamodel_change", args=[model.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    assert b"sk-should-never-leave-the-server" not in page.content

    response = admin_client.post(url, model_form(model, endpoint, served_model_id="renamed"))
    assert response.status_code == 302, response.content[:2000]
    endpoint.refresh_from_db()
    assert endpoint.served_model_id == "renamed"
    assert endpoint.api_key == "sk-should-never-leave-the-server"


def test_a_stored_key_is_not_kept_for_a_url_that_points_elsewhere(admin_client):
    """The write-only key could be taken by editing the URL alone: the next probe (within 15 s) sent
    `Authorization: Bearer <key>` to the new host."""
    model, endpoint = keyed_model()
    url = reverse("admin:inference_arenamodel_change", args=[model.pk])
    elsewhere = "https://collector.example/v1"
    for blank in ("", " "):  # a space alone is no key (the form strips it), and kept the stored one
        refused = admin_client.post(url, model_form(model, endpoint, base_url=elsewhere, api_key=blank))
        assert refused.status_code == 200 and "the stored key would be sent there" in refused.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.base_url != elsewhere and endpoint.api_key == "sk-should-never-leave-the-server"
    same_host = endpoint.base_url.replace("/v1", "/v2")  # another path on the same server keeps its key
    assert admin_client.post(url, model_form(model, endpoint, base_url=same_host)).status_code == 302
    cleared = model_form(model, endpoint, base_url=elsewhere, clear_api_key="on")
    assert admin_client.post(url, cleared).status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.base_url == elsewhere and endpoint.api_key == ""
    retyped = model_form(model, endpoint, base_url="https://other.example/v1", api_key="sk-new")
    assert admin_client.post(url, retyped).status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.api_key == "sk-new"


def test_a_base_url_with_a_query_fragment_or_credentials_is_refused(admin_client):
    """The arena appends /chat/completions and /models: "http://169.254.169.254/latest/meta-data/?x=" passed as a
    URL and had the probe ask the address itself; credentials in a URL are a key outside its encrypted field."""
    model, endpoint = keyed_model()
    url = reverse("admin:inference_arenamodel_change", args=[model.pk])
    for bad, says in (("http://169.254.169.254/latest/meta-data/?x=", "no query"),
                      ("http://127.0.0.1:8081/v1#x", "no query"),
                      ("http://user:sk-key@127.0.0.1:8081/v1", "not in the URL")):  # fmt: skip
        response = admin_client.post(url, model_form(model, endpoint, base_url=bad, api_key="k"))
        assert response.status_code == 200 and says in response.content.decode(), bad
    endpoint.refresh_from_db()
    assert "?" not in endpoint.base_url and "@" not in endpoint.base_url


def test_the_admin_shows_each_endpoints_state_last_error_recent_ttft_and_load(admin_client):
    from asgiref.sync import async_to_sync

    from inference import health, routing
    from inference.selectors import replica_of

    broken = make_model("broken-model").endpoints.get()
    fine = make_model("fine-model").endpoints.get()
    for _ in range(health.POLICY.failures_to_open):
        async_to_sync(health.record_failure)(broken.pk, error="unreachable: connection refused")
    async_to_sync(health.record_success)(fine.pk, ttft=0.25, duration=2.0)
    async_to_sync(routing.reserve)([replica_of(fine)], hold_seconds=60)
    page = admin_client.get(reverse("admin:inference_endpoint_changelist")).content.decode()
    assert "down (next trial in" in page and "connection refused" in page
    assert "healthy" in page and "0.25s" in page and "1 / 4" in page
    model_page = admin_client.get(reverse("admin:inference_arenamodel_change", args=[broken.model_id]))
    assert "down (next trial in" in model_page.content.decode()


def test_the_admin_says_whether_a_vllm_model_fits_its_gpus(admin_client):
    from inference.models import ArenaModel

    model = ArenaModel.objects.create(name="vicuna-33b", hosting="vllm", weights="lmsys/vicuna-33b-v1.3",
                                      parameters_billion=32.5, num_layers=60, hidden_size=6656, gpu_memory_gb=40)  # fmt: skip
    page = admin_client.get(reverse("admin:inference_arenamodel_change", args=[model.pk])).content.decode()
    assert "does not fit" in page and "quantize it" in page


def test_an_endpoint_added_on_its_own_page_names_its_model_and_a_taken_port_is_refused(admin_client):
    from inference.models import ArenaModel, Endpoint

    smollm = ArenaModel.objects.create(name="SmolLM2", hosting="llamacpp", weights="s.gguf")
    qwen = ArenaModel.objects.create(name="Qwen", hosting="llamacpp", weights="q.gguf")
    url = reverse("admin:inference_endpoint_add")
    form = {"model": smollm.pk, "base_url": "http://127.0.0.1:9681/v1", "served_model_id": "smollm2", "port": 9681,
            "is_active": "on", "max_concurrency": 2}  # fmt: skip
    assert admin_client.post(url, form).status_code == 302  # was a 500: no model on the form
    assert Endpoint.objects.get().model == smollm
    taken = admin_client.post(url, {**form, "model": qwen.pk, "served_model_id": "qwen"})
    assert taken.status_code == 200 and "Port 9681 is already SmolLM2&#x27;s server&#x27;s." in taken.content.decode()
    elsewhere = admin_client.post(url, {**form, "model": qwen.pk, "served_model_id": "qwen", "port": 9682})
    assert "must name that port" in elsewhere.content.decode()
    assert Endpoint.objects.count() == 1


def test_an_endpoints_page_shows_its_state_now_not_as_the_last_list_page_read_it(admin_client):
    from asgiref.sync import async_to_sync

    from inference import health

    endpoint = make_model("flaky-model").endpoints.get()
    assert "healthy" in admin_client.get(reverse("admin:inference_endpoint_changelist")).content.decode()
    for _ in range(health.POLICY.failures_to_open):
        async_to_sync(health.record_failure)(endpoint.pk, error="unreachable: connection refused")
    page = admin_client.get(reverse("admin:inference_endpoint_change", args=[endpoint.pk])).content.decode()
    assert "down (next trial in" in page


def test_a_key_typed_while_clear_is_ticked_is_not_thrown_away_without_a_word(admin_client):
    model, endpoint = keyed_model()
    url = reverse("admin:inference_arenamodel_change", args=[model.pk])
    page = admin_client.post(url, model_form(model, endpoint, api_key="sk-new", clear_api_key="on")).content.decode()
    assert "A new key is typed" in page
    endpoint.refresh_from_db()
    assert endpoint.api_key == "sk-should-never-leave-the-server"


def test_a_historical_model_given_an_endpoint_in_the_admin_becomes_live(admin_client):
    """Its answers were not checked for its own name (the leak detector leaves historical models out), nor
    was it probed, while it was drawn into battles."""
    from inference.models import ArenaModel

    model, endpoint = keyed_model()
    ArenaModel.objects.filter(pk=model.pk).update(is_historical=True)
    url = reverse("admin:inference_arenamodel_change", args=[model.pk])
    form = {**model_form(model, endpoint, api_key="sk-again"), "is_historical": "on"}  # its box left ticked
    assert admin_client.post(url, form).status_code == 302
    assert ArenaModel.objects.get(pk=model.pk).is_historical is False


def test_the_admin_refuses_a_local_model_without_a_port_and_a_vllm_model_without_weights(admin_client):
    """Only `models add` checked these: through the admin a llama.cpp model without a port was saved and its
    server never started (nothing said so), and a vLLM model without weights was served as `vllm serve ""`."""
    model = make_model("local-one")
    endpoint = model.endpoints.get()
    url = reverse("admin:inference_arenamodel_change", args=[model.pk])
    local = {
        **model_form(model, endpoint, base_url="http://127.0.0.1:9191/v1"),
        "hosting": "llamacpp",
        "weights": "m.gguf",
    }
    page = admin_client.post(url, local)
    assert (
        page.status_code == 200
        and "needs a port to be started on: the one its base URL names (9191)" in page.content.decode()
    )
    vllm = {**local, "hosting": "vllm", "weights": "  ", "endpoints-0-port": "9191"}
    page = admin_client.post(url, vllm)
    assert page.status_code == 200 and "A vLLM-hosted model needs its weights" in page.content.decode()
    model.refresh_from_db()
    assert model.hosting == "remote"  # nothing stored
    assert admin_client.post(url, {**vllm, "weights": "org/model"}).status_code == 302
