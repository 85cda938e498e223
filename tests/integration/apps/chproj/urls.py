from django.urls import path

from . import views

urlpatterns = [
    path("login/", views.login_view),
    path("whoami/", views.whoami),
    path("stats/", views.stats),
    path("groups/<str:name>/", views.group_size),
    path("broadcast/<str:room>/", views.broadcast),
]
