from django.urls import path

from . import views

urlpatterns = [
    path("hello/", views.hello),
    path("stream/", views.stream),
    path("echo/", views.echo),
    path("info/", views.info),
]
