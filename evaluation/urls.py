from django.urls import path

from evaluation import views
from evaluation.urls_board import urlpatterns as board_urlpatterns

app_name = "evaluation"
urlpatterns = [
    path("", views.EvaluationList.as_view(), name="evaluations"),
    path("<int:pk>/", views.evaluation_detail, name="evaluation"),
    path("<int:pk>/status/", views.evaluation_status, name="status"),
    path("<int:pk>/cancel/", views.cancel, name="cancel"),
    path("<int:pk>/resume/", views.resume, name="resume"),
    path("<int:pk>/delete/", views.delete, name="delete"),
    path("<int:pk>/tasks/<int:index>/", views.task_result, name="task_result"),
    path("suites/", views.SuiteList.as_view(), name="suites"),
    path("suites/new/", views.suite_create, name="suite_create"),
    path("suites/<int:pk>/", views.SuiteDetail.as_view(), name="suite"),
    path("suites/<int:pk>/delete/", views.suite_delete, name="suite_delete"),
    path("run/<int:run_pk>/", views.evaluate_run, name="evaluate_run"),
    path("model/<int:model_pk>/", views.evaluate_model, name="evaluate_model"),
]
urlpatterns += board_urlpatterns
