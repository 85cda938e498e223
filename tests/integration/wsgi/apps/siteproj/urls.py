from django.urls import path

from . import views

urlpatterns = [
    path("hello/", views.hello),
    path("count/", views.count),
    path("form/", views.form),
    path("download/", views.download),
    path("stream/", views.stream),
    path("boom/", views.boom),
    path("sleep/", views.sleep),
    path("hold/", views.hold),
]
