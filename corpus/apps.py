from django.apps import AppConfig


class CorpusConfig(AppConfig):
    verbose_name = "Corpus"
    name = "corpus"

    def ready(self) -> None:
        from corpus import protection

        protection.connect()
