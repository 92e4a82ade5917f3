from django.urls import path  # noqa: F401 - the pages are added as they land

from evaluation.urls_board import urlpatterns as board_urlpatterns

app_name = "evaluation"
urlpatterns: list = []
urlpatterns += board_urlpatterns
