from django.contrib import admin
from django.urls import include, path

from arena import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", views.metrics, name="metrics"),
    path("", include("battles.urls")),
    path("", include("ratings.urls")),
]
