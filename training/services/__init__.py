"""Training services by subject: tokenizers, datasets, runs (as training/views/)."""
