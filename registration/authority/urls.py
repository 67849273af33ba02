"""The verification service's one public page: what the phone opens from the QR code."""

from django.urls import path

from registration.authority import views

app_name = "phone"

urlpatterns = [path("m/<str:token>", views.verify, name="verify")]
