"""Corpus pages: repositories, pull requests, fetch jobs, snapshots."""

from __future__ import annotations

from django.db.models import Count, Q
from django.shortcuts import render
from django.views.generic import DetailView, ListView

from corpus.models import FetchJob, PullRequest, Repository, Snapshot
from hrgc_site.listing import SortableListMixin


class RepositoryList(SortableListMixin, ListView):
    model = Repository
    template_name = "corpus/repository_list.html"
    sort_fields = {"name": "full_name", "prs": "pr_count", "included": "included_count", "license": "license_spdx",
                   "stars": "stars", "fetched": "last_fetched_at"}
    default_sort = "name"

    def get_queryset(self):
        queryset = Repository.objects.annotate(
            pr_count=Count("pull_requests"), included_count=Count("pull_requests", filter=Q(pull_requests__included=True))
        )
        return self.sort_queryset(queryset)


class RepositoryDetail(DetailView):
    model = Repository
    template_name = "corpus/repository_detail.html"


def add_repositories(request):
    return render(request, "corpus/add.html", {})


class PullRequestList(SortableListMixin, ListView):
    model = PullRequest
    template_name = "corpus/pullrequest_list.html"
    sort_fields = {"merged": "merged_at", "number": "number", "size": "serialized_chars", "title": "title"}
    default_sort = "-merged"

    def get_queryset(self):
        return self.sort_queryset(PullRequest.objects.select_related("repository"))


class PullRequestDetail(DetailView):
    model = PullRequest
    template_name = "corpus/pullrequest_detail.html"


class FetchJobList(ListView):
    model = FetchJob
    template_name = "corpus/fetchjob_list.html"
    paginate_by = 50


class FetchJobDetail(DetailView):
    model = FetchJob
    template_name = "corpus/fetchjob_detail.html"


class SnapshotList(ListView):
    model = Snapshot
    template_name = "corpus/snapshot_list.html"
    paginate_by = 50


class SnapshotDetail(DetailView):
    model = Snapshot
    template_name = "corpus/snapshot_detail.html"
