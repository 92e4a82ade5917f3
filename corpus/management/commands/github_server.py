"""Serve the sample story over a GitHub-shaped REST API on loopback, for trying the fetch path offline."""

from django.core.management.base import BaseCommand

from corpus.github.server import main


class Command(BaseCommand):
    help = "Run the GitHub-shaped server with the sample story (point the API URL setting at it)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--token", default=None, help="answer 401 to any other token")
        parser.add_argument("--git", action="store_true", help="also serve the sample as git repositories")
        parser.add_argument(
            "--repo",
            action="append",
            default=[],
            metavar="OWNER/NAME=PATH",
            help="serve this local git repository (its merged PRs, and itself over git) instead of the sample",
        )

    def handle(self, *args, port, host, token, git, repo, **options):
        argv = [
            "--port",
            str(port),
            "--host",
            host,
            *(["--token", token] if token else []),
            *(["--git"] if git else []),
        ]
        for spec in repo:
            argv += ["--repo", spec]
        main(argv)
