from django.urls import path

from registration.views import console, request

app_name = "registration"

urlpatterns = [
    path("registration/", console.registration_page, name="registration"),
    path("registration/upload", console.upload_license, name="upload"),
    path("registration/challenge", console.refresh_challenge, name="challenge"),
    path("registration/code", console.submit_code, name="code"),
    path("registration/qr/<int:pk>.png", console.qr_image, name="qr"),
    path("version/", console.version_page, name="version"),
    path("version/request", request.license_request, name="license_request"),
]
