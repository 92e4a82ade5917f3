from django.urls import path  # noqa: F401 - the pages are added as they land

app_name = "evaluation"
urlpatterns: list = []
