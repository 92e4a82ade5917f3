from django.contrib import admin

from corpus import models
from corpus.protection import refusal, snapshots_listing


class KeepSnapshotPullRequests:
    """The delete pages list the snapshots that hold the pull requests as protected: the admin then
    refuses with its "cannot delete" page instead of removing PRs from under a frozen snapshot."""

    def pull_request_ids(self, objs) -> list[int]:
        raise NotImplementedError

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        objs = list(objs)
        snapshots = snapshots_listing(self.pull_request_ids(objs))
        if snapshots:
            what = ", ".join(str(obj) for obj in objs[:3]) + (" …" if len(objs) > 3 else "")
            protected = [*protected, refusal(snapshots, what)]
        return deleted, counts, perms_needed, protected


@admin.register(models.Repository)
class RepositoryAdmin(KeepSnapshotPullRequests, admin.ModelAdmin):
    list_display = ("full_name", "source", "license_spdx", "stars", "included", "state", "last_fetched_at")
    list_filter = ("source", "included", "state", "license_spdx")
    search_fields = ("full_name",)

    def pull_request_ids(self, objs) -> list[int]:
        return list(models.PullRequest.objects.filter(repository__in=objs).values_list("pk", flat=True))


@admin.register(models.PullRequest)
class PullRequestAdmin(KeepSnapshotPullRequests, admin.ModelAdmin):
    list_display = ("__str__", "title", "category", "intent", "included", "merged_at")
    list_filter = ("category", "intent", "included", "syntax_ok")
    search_fields = ("title", "repository__full_name")
    raw_id_fields = ("repository", "duplicate_of", "fetch_job")

    def pull_request_ids(self, objs) -> list[int]:
        return [obj.pk for obj in objs]


@admin.register(models.FetchJob)
class FetchJobAdmin(admin.ModelAdmin):
    list_display = ("pk", "kind", "status", "repos_done", "prs_new", "api_requests", "created_at")
    list_filter = ("status", "kind")


@admin.register(models.Snapshot)
class SnapshotAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "pr_count", "sha256", "created_at")
    filter_horizontal = ()
    raw_id_fields = ("pull_requests",)


@admin.register(models.GitHubSettings)
class GitHubSettingsAdmin(admin.ModelAdmin):
    """The token is write-only everywhere: the admin neither shows nor edits it (set it on Corpus → Add)."""

    exclude = ("token", "token_api_url")
    readonly_fields = ("token_state",)
    list_display = ("__str__", "api_url", "token_state")

    @admin.display(description="token")
    def token_state(self, obj) -> str:
        if not obj.token:
            return "none stored"
        return f"stored for {obj.token_api_url or 'an unknown API'} (set or remove it on Corpus → Add repositories)"
