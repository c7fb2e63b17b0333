from django.contrib import admin
from django.urls import include, path

from embeddings.v1.api import v1
from searchsite.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("v1/", v1.urls),
    path("", include("faq.urls")),
]
