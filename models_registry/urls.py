from django.urls import path

from models_registry import views

app_name = "models_registry"
urlpatterns = [
    path("", views.ModelList.as_view(), name="models"),
    path("<int:pk>/", views.ModelDetail.as_view(), name="model"),
]
