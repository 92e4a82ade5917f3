"""Writes to the corpus, by subject: ingest, repositories, dedupe, curation, snapshots, fetch jobs."""
