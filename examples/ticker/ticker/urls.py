from django.urls import path

from board import views

urlpatterns = [
    path("", views.board, name="board"),
    path("health", views.health, name="health"),
]
