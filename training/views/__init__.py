"""Training pages, one module per section; each module owns its urlpatterns."""
