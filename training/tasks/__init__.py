"""django-q2 entry points by subject: tokenizers, datasets, runs (as training/views/)."""
