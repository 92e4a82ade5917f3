from training.views import datasets, runs, tokenizers

app_name = "training"
urlpatterns = tokenizers.urlpatterns + datasets.urlpatterns + runs.urlpatterns
