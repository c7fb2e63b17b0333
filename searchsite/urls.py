from django.contrib import admin
from django.urls import include, path

from embeddings.v1.api import v1
from faq.throttles import login_throttled
from searchsite.api import api
from searchsite.metrics import metrics_view

urlpatterns = [
    # Before the admin's own: the same sign-in page, with attempts limited.
    path("admin/login/", login_throttled(admin.site.login), name="admin-login"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("v1/", v1.urls),
    path("metrics", metrics_view, name="metrics"),
    path("", include("faq.urls")),
]
