from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("health", views.health, name="health"),
    path("stream/", views.stream, name="stream"),
    path("echo/", views.echo, name="echo"),
    path("chat/<str:room_name>/", views.room, name="room"),
]
