from django.urls import path

from pages import views

urlpatterns = [
    path("hello/", views.hello),
    path("users/", views.users),
]
