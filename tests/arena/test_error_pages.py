"""The page a visitor sees when the arena fails (templates/500.html), instead of Django's bare one."""

from django.test import RequestFactory
from django.views.defaults import server_error


def test_a_server_error_is_explained_in_plain_words_in_the_sites_look():
    response = server_error(RequestFactory().get("/"))
    page = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in page
    assert 'class="site-header"' in page and "arena/site.css" in page  # the site's header and stylesheet
    assert 'href="/"' in page  # a way back to the battle page
