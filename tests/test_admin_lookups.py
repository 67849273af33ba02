"""Every admin changelist answers only the lookups it declares, and bad input is 4xx.

Walks every registered ModelAdmin, every field, the lookups a reader would try
(exact, startswith, regex, gt, in, year, month, day) with normal, huge and malformed
values: no 500, and no changelist is ever narrowed by a secret field.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.db import models
from django.test import RequestFactory
from django.urls import reverse

from registration.adminbase import StrictAdmin
from registration.authority.models import DOWNLOAD_PERMISSION, IssuedLicense
from registration.flows.challenge import refresh_challenge
from registration.models import NodeLease, QrChallenge
from registration.protocol.license import fingerprint
from tests.node_steps import node, register

pytestmark = pytest.mark.django_db

LOOKUPS = ["exact", "startswith", "regex", "gt", "in", "year", "month", "day"]
HUGE = "9" * 25
NO_ROW_HAS_IT = "zz-no-row-has-this-value"
MALFORMED = "abc%'\\x\u202e"
# Fields whose values are secrets, wherever they are stored.
SECRET_FIELDS = {
    ("registration", "qrchallenge"): {"token", "code_verifier"},
    ("registration", "installedlicense"): {"text"},
    ("authority", "issuedlicense"): {"text"},
    ("auth", "user"): {"password"},
}


@pytest.fixture
def every_table_has_rows(issue, frozen_clock, admin_user):
    """A registered installation (license, binding, audit entries), an open QR, a lease."""
    _lic, text = issue(company="Walk Co", project_name="Walk Reports")
    register(text)
    refresh_challenge()
    identity = node("node-a")
    NodeLease.objects.create(
        node_name=identity.name,
        boot_id=identity.boot_id,
        started_at=frozen_clock.now(),
        last_seen=frozen_clock.now(),
    )
    Group.objects.get_or_create(name="Walkers")


def _admins() -> list[tuple[type[models.Model], admin.ModelAdmin]]:
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def _changelist(model: type[models.Model]) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def _normal_value(model: type[models.Model], field: models.Field) -> str:
    """A value that matches the first row: what narrows a list if the lookup is honoured."""
    value = model.objects.values_list(field.attname, flat=True).first()
    if isinstance(value, datetime | date):
        return str(value.year)
    if isinstance(value, memoryview | bytes):
        return bytes(value)[:2].hex()
    return str(value)[:12] if value not in (None, "") else "1"


def _result_count(response) -> int | None:
    context = response.context
    return context["cl"].result_count if context and "cl" in context else None


def test_every_registered_admin_is_strict():
    loose = [m._meta.label for m, a in _admins() if not isinstance(a, StrictAdmin)]
    assert loose == []


def test_no_secret_field_is_listed_filtered_searched_or_ordered():
    for model, model_admin in _admins():
        opts = model._meta
        secret = SECRET_FIELDS.get((opts.app_label, opts.model_name), set())
        secret |= {f.name for f in opts.concrete_fields if isinstance(f, models.BinaryField)}
        assert secret <= set(model_admin.secret_fields) | {
            f.name for f in opts.concrete_fields if isinstance(f, models.BinaryField)
        }, opts.label
        declared = [
            *model_admin.list_display,
            *(f if isinstance(f, str) else "" for f in model_admin.list_filter),
            *(s.lstrip("^=@") for s in model_admin.search_fields),
            *(o.lstrip("-") for o in model_admin.ordering or ()),
            model_admin.date_hierarchy or "",
        ]
        shown = [name for name in declared if name.split("__")[0] in secret]
        assert shown == [], opts.label


def test_the_walk_finds_no_500_and_no_secret_oracle(admin_client, every_table_has_rows):
    admin_client.raise_request_exception = False
    failures = []
    for model, _model_admin in _admins():
        url = _changelist(model)
        total = _result_count(admin_client.get(url))
        assert total, f"{model._meta.label}: the walk needs at least one row"
        opts = model._meta
        secret = SECRET_FIELDS.get((opts.app_label, opts.model_name), set())
        for field in opts.concrete_fields:
            for lookup in LOOKUPS:
                # The first row's own value narrows nothing on a one-row table; a value
                # no row has shows an honoured filter there (an empty list).
                for value in (_normal_value(model, field), NO_ROW_HAS_IT, HUGE, MALFORMED):
                    param = f"{field.name}__{lookup}"
                    response = admin_client.get(url, {param: value})
                    count = _result_count(response) if response.status_code == 200 else None
                    if response.status_code >= 500:
                        failures.append(f"{url}?{param}={value!r}: {response.status_code}")
                    elif field.name in secret and count is not None and count != total:
                        failures.append(f"{url}?{param}={value!r}: narrowed to {count}")
    assert failures == []


@pytest.mark.parametrize(
    "url, params",
    [
        ("admin:authority_binding_changelist", {"first_bound__year": "99999999999"}),
        ("admin:authority_auditevent_changelist", {"at__year": "99999999999"}),
        ("admin:authority_auditevent_changelist", {"at__year": "2026", "at__month": HUGE}),
        ("admin:authority_auditevent_changelist", {"at__year": "2026", "at__day": "-1"}),
        ("admin:registration_auditevent_changelist", {"at__year": "0"}),
        ("admin:authority_issuedlicense_changelist", {"issued_at__year": "99999999999"}),
        ("admin:registration_qrchallenge_changelist", {"issued_at__year": HUGE}),
        ("admin:registration_qrchallenge_changelist", {"state": "open", "token__regex": "^A"}),
        ("admin:registration_qrchallenge_changelist", {"code_verifier__startswith": "s"}),
        ("admin:registration_qrchallenge_changelist", {"code_verifier__gt": "a"}),
        ("admin:auth_user_changelist", {"password__startswith": "pbkdf2"}),
        ("admin:authority_binding_changelist", {"first_bound__gte": "99999999999-01-01"}),
        # The edges of the calendar: Django computes the end of the period after them.
        ("admin:authority_auditevent_changelist", {"at__year": "9999"}),
        ("admin:authority_auditevent_changelist", {"at__year": "9999", "at__month": "12"}),
        ("admin:registration_auditevent_changelist", {"at__year": "9999", "at__day": "31"}),
        # Times that exist only until converted to UTC.
        ("admin:authority_binding_changelist", {"first_bound__gte": "0001-01-01 00:00:00+01:00"}),
        ("admin:authority_binding_changelist", {"first_bound__lt": "9999-12-31 23:59:59-05:00"}),
        # Secrets behind a relation.
        ("admin:authority_binding_changelist", {"license__text__regex": "^-"}),
        ("admin:registration_qrchallenge_changelist", {"license__text__startswith": "-"}),
    ],
)
def test_oracles_and_huge_drill_downs_are_refused(admin_client, every_table_has_rows, url, params):
    admin_client.raise_request_exception = False
    response = admin_client.get(reverse(url), params)
    # 400, or Django's own "invalid lookup" redirect (?e=1): never a list, never a 500.
    assert response.status_code in {302, 400}, response.status_code
    if response.status_code == 302:
        assert response["Location"].endswith("?e=1")


def test_declared_filters_and_drill_downs_still_work(
    admin_client, frozen_clock, every_table_has_rows
):
    challenges = reverse("admin:registration_qrchallenge_changelist")
    assert _result_count(admin_client.get(challenges, {"state__exact": "open"})) == 1
    audit = reverse("admin:authority_auditevent_changelist")
    this_year = {"at__year": str(frozen_clock.now().year)}
    assert _result_count(admin_client.get(audit, this_year)) >= 1
    assert _result_count(admin_client.get(audit, {"at__year": "1999"})) == 0
    bindings = reverse("admin:authority_binding_changelist")
    assert _result_count(admin_client.get(bindings, {"state__exact": "active"})) == 1
    assert _result_count(admin_client.get(bindings, {"q": "Walk Co"})) == 1


@pytest.mark.parametrize("selected", ["abc", HUGE, "-" + HUGE, "1.5", ""])
def test_an_action_on_ids_that_are_not_ids_is_400(
    admin_client, admin_user, every_table_has_rows, selected
):
    admin_client.raise_request_exception = False
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    for model, model_admin in _admins():
        request_actions = model_admin.get_actions(request)
        if not request_actions:
            continue
        response = admin_client.post(
            _changelist(model),
            {"action": next(iter(request_actions)), "_selected_action": [selected], "index": 0},
        )
        assert response.status_code in {302, 400}, (model._meta.label, response.status_code)
        if selected:
            assert response.status_code == 400


def test_a_change_page_for_an_id_that_is_not_an_id_is_not_a_500(admin_client, every_table_has_rows):
    admin_client.raise_request_exception = False
    for model, _model_admin in _admins():
        opts = model._meta
        for bad in ("abc", HUGE):
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[bad])
            assert admin_client.get(url).status_code in {302, 404}, (url,)


# --- The license file is shown as a fingerprint ---------------------------------------


def test_license_pages_show_a_fingerprint_not_the_file(admin_client, every_table_has_rows):
    issued = IssuedLicense.objects.get()
    installed = QrChallenge.objects.select_related("license").first().license
    for url, obj in (
        (reverse("admin:authority_issuedlicense_change", args=[issued.pk]), issued),
        (reverse("admin:registration_installedlicense_change", args=[installed.pk]), installed),
    ):
        page = admin_client.get(url).text
        signature_line = obj.text.strip().splitlines()[1]
        assert signature_line not in page
        assert fingerprint(obj.text) in page


def test_downloading_a_license_file_needs_its_own_permission(
    client, django_user_model, every_table_has_rows
):
    issued = IssuedLicense.objects.get()
    url = reverse("admin:authority_issuedlicense_download", args=[issued.pk])
    support = django_user_model.objects.create_user("s", password="pw-s-1", is_staff=True)
    support.groups.add(Group.objects.get(name="Support staff"))
    client.force_login(support)
    assert client.post(url).status_code == 403
    assert client.get(url).status_code in {403, 405}

    app_label, codename = DOWNLOAD_PERMISSION.split(".")
    support.user_permissions.add(
        Permission.objects.get(content_type__app_label=app_label, codename=codename)
    )
    client.force_login(support)
    response = client.post(url)
    assert response.status_code == 200
    assert response.content.decode() == issued.text
    assert response["Content-Disposition"] == 'attachment; filename="Container.lic"'
    assert "no-store" in response["Cache-Control"]
