"""Training forms by subject: tokenizers, datasets, runs (as training/views/)."""
