from django.apps import AppConfig


class CorpusConfig(AppConfig):
    verbose_name = "Corpus"
    name = "corpus"
