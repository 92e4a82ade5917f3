"""Evaluation: frozen suites of held-out tasks, per-task results for checkpoints and GGUF exports,
the leaderboard, family comparisons and blind human ratings."""
