from django.urls import path

from models_registry import views

app_name = "models_registry"
urlpatterns = [
    path("", views.ModelList.as_view(), name="models"),
    path("<int:pk>/", views.ModelDetail.as_view(), name="model"),
    path("<int:pk>/status/", views.model_status, name="status"),
    path("<int:pk>/download/<str:name>", views.download, name="download"),
    path("<int:pk>/delete/", views.delete_model, name="delete"),
    path("export/run/<int:run_pk>/", views.export_run, name="export"),
    path("playground/", views.playground, name="playground"),
    path("playground/generate/", views.playground_generate, name="playground_generate"),
]
