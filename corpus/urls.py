from django.urls import path

from corpus import views

app_name = "corpus"
urlpatterns = [
    path("", views.RepositoryList.as_view(), name="repositories"),
    path("repositories/<int:pk>/", views.RepositoryDetail.as_view(), name="repository"),
    path("repositories/<int:pk>/fetch/", views.repository_fetch, name="repository_fetch"),
    path("repositories/<int:pk>/curate/", views.repository_curate, name="repository_curate"),
    path("repositories/<int:pk>/drop-clone/", views.repository_drop_clone, name="repository_drop_clone"),
    path("add/", views.add_repositories, name="add"),
    path("add/names/", views.add_names, name="add_names"),
    path("add/selected/", views.add_selected, name="add_selected"),
    path("add/search/", views.add_search, name="add_search"),
    path("add/git/", views.import_git, name="import_git"),
    path("add/sample/", views.import_sample, name="import_sample"),
    path("settings/", views.save_settings, name="settings"),
    path("pulls/", views.PullRequestList.as_view(), name="pullrequests"),
    path("pulls/curate/", views.pullrequest_bulk_curate, name="pullrequests_curate"),
    path("pulls/rejudge/", views.rejudge_duplicates, name="rejudge"),
    path("pulls/<int:pk>/", views.PullRequestDetail.as_view(), name="pullrequest"),
    path("pulls/<int:pk>/curate/", views.pullrequest_curate, name="pullrequest_curate"),
    path("pulls/<int:pk>/training-text/", views.pullrequest_training_text, name="pullrequest_training_text"),
    path("curation/", views.CurationHistory.as_view(), name="curation"),
    path("curation/<int:pk>/undo/", views.curation_undo, name="curation_undo"),
    path("stats/", views.corpus_stats, name="stats"),
    path("fetches/", views.FetchJobList.as_view(), name="fetchjobs"),
    path("fetches/<int:pk>/", views.FetchJobDetail.as_view(), name="fetchjob"),
    path("fetches/<int:pk>/progress/", views.fetchjob_progress, name="fetchjob_progress"),
    path("fetches/<int:pk>/cancel/", views.fetchjob_cancel, name="fetchjob_cancel"),
    path("fetches/<int:pk>/retry/", views.fetchjob_retry, name="fetchjob_retry"),
    path("snapshots/", views.SnapshotList.as_view(), name="snapshots"),
    path("snapshots/create/", views.snapshot_create, name="snapshot_create"),
    path("snapshots/<int:pk>/", views.SnapshotDetail.as_view(), name="snapshot"),
    path("snapshots/<int:pk>/progress/", views.snapshot_progress, name="snapshot_progress"),
]
