"""The board's URLs (leaderboard, comparisons, ratings), added to evaluation.urls."""

from django.urls import path

from evaluation import views_board

urlpatterns = [
    path("leaderboard/", views_board.leaderboard, name="leaderboard"),
    path("rate/", views_board.rate, name="rate"),
    path("ratings/", views_board.ratings_page, name="ratings"),
]
