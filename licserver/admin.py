"""Django's own User and Group admins, held to the same rules as the product's.

Django's defaults let a superuser filter users by any field, password hashes included,
and answer 500 to an action asked for an id that is not a number; StrictAdmin answers
only the lookups the filters declare and 400 to bad ids.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User

from registration.adminbase import StrictAdmin


class StrictUserAdmin(StrictAdmin, UserAdmin):
    secret_fields = ("password",)


class StrictGroupAdmin(StrictAdmin, GroupAdmin):
    pass


for model, model_admin in ((User, StrictUserAdmin), (Group, StrictGroupAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
