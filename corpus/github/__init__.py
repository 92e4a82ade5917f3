"""GitHub REST collection: a rate-limit-aware client, PR fetchers and a GitHub-shaped local server."""
