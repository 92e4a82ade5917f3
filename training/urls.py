from django.urls import path

from training import views

app_name = "training"
urlpatterns = [
    path("tokenizers/", views.TokenizerList.as_view(), name="tokenizers"),
    path("tokenizers/<int:pk>/", views.TokenizerDetail.as_view(), name="tokenizer"),
    path("datasets/", views.DatasetList.as_view(), name="datasets"),
    path("datasets/<int:pk>/", views.DatasetDetail.as_view(), name="dataset"),
    path("runs/", views.RunList.as_view(), name="runs"),
    path("runs/<int:pk>/", views.RunDetail.as_view(), name="run"),
]
