"""The board's URLs (leaderboard, comparisons, ratings), added to evaluation.urls."""

from django.urls import path

from evaluation import views_board

urlpatterns = [
    path("leaderboard/", views_board.leaderboard, name="leaderboard"),
    path("rate/", views_board.rate, name="rate"),
    path("ratings/", views_board.ratings_page, name="ratings"),
    path("compare/<int:dataset_pk>/", views_board.compare, name="compare"),
    path("comparisons/<int:pk>/", views_board.comparison, name="comparison"),
    path("comparisons/<int:pk>/status/", views_board.comparison_status, name="comparison_status"),
]
