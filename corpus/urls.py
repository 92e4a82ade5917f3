from django.urls import path

from corpus import views

app_name = "corpus"
urlpatterns = [
    path("", views.RepositoryList.as_view(), name="repositories"),
    path("repositories/<int:pk>/", views.RepositoryDetail.as_view(), name="repository"),
    path("add/", views.add_repositories, name="add"),
    path("pulls/", views.PullRequestList.as_view(), name="pullrequests"),
    path("pulls/<int:pk>/", views.PullRequestDetail.as_view(), name="pullrequest"),
    path("fetches/", views.FetchJobList.as_view(), name="fetchjobs"),
    path("fetches/<int:pk>/", views.FetchJobDetail.as_view(), name="fetchjob"),
    path("snapshots/", views.SnapshotList.as_view(), name="snapshots"),
    path("snapshots/<int:pk>/", views.SnapshotDetail.as_view(), name="snapshot"),
]
