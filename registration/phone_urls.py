from django.urls import path

from registration.views import phone

app_name = "phone"

urlpatterns = [path("m/<str:token>", phone.verify, name="verify")]
