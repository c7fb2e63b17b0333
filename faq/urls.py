from django.urls import path

from faq import views

app_name = "faq"
urlpatterns = [
    path("", views.search_page, name="search"),
    path("suggest/", views.suggest_options, name="suggest"),
    path("feedback/", views.feedback, name="feedback"),
    path("click/", views.click, name="click"),
    path("<str:kind>/<int:pk>/", views.item_page, name="item"),
]
