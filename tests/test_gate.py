"""Registration as a gate: current_registration(), the decorator, the mixin, templates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.cache import cache
from django.http import HttpResponse
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse
from django.views import View

from registration import status
from registration.cluster import admission
from registration.gate import (
    GateState,
    RegistrationRequiredMixin,
    current_registration,
    evaluate,
)
from registration.models import RegistrationState
from registration.status import StatusSnapshot
from registration.views.reports import reports_page
from tests.conftest import START
from tests.gate_steps import lock, register, restart, upload

REPORTS = reverse("reports")
REGISTRATION = reverse("registration:registration")
EXPIRES = date(2027, 1, 31)
# The first instant after the license's last day, UTC.
RUN_OUT = datetime(2027, 2, 1, tzinfo=UTC)
TICK = timedelta(microseconds=1)
RESTART_TEXT = (
    "Your project registration has expired due to project restart. "
    "Enter registration management and authenticate again."
)


def snap(state: str = "registered", **fields: object) -> StatusSnapshot:
    defaults: dict[str, object] = dict(
        license_id="a1", company="Acme Ltd", project_name="Reports", expires_at=EXPIRES
    )
    defaults.update(fields)
    return StatusSnapshot(state=state, **defaults)  # type: ignore[arg-type]


# --- The rules (pure) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("snapshot", "now", "admitted", "expected"),
    [
        (snap("unregistered", license_id=None, expires_at=None), START, True, "unregistered"),
        (snap("unregistered"), START, True, "unregistered"),
        (snap(), START, True, "registered"),
        # The last day is still valid, to its last microsecond; midnight after it is not.
        (snap(), RUN_OUT - TICK, True, "registered"),
        (snap(), RUN_OUT, True, "license_expired"),
        (snap("expired_due_to_restart"), RUN_OUT - TICK, True, "expired_due_to_restart"),
        (snap("expired_due_to_restart"), RUN_OUT, True, "license_expired"),
        # An installed but never registered license that runs out is just unregistered.
        (snap("unregistered"), RUN_OUT, True, "unregistered"),
        # A lock counts until its last microsecond, and only while not registered.
        (snap("unregistered", locked_until=START), START - TICK, True, "locked"),
        (snap("unregistered", locked_until=START), START, True, "unregistered"),
        (snap(locked_until=START), START - TICK, True, "registered"),
        (
            snap("expired_due_to_restart", locked_until=START),
            START - TICK,
            True,
            "expired_due_to_restart",
        ),
        # Without a seat on this node nothing else matters.
        (snap(), START, False, "not_admitted"),
        (snap(), RUN_OUT, False, "not_admitted"),
        (snap("unregistered", locked_until=START), START - TICK, False, "not_admitted"),
    ],
)
def test_state_precedence(snapshot, now, admitted, expected):
    assert evaluate(snapshot, now, admitted=admitted).state == expected


@pytest.mark.parametrize(
    ("now", "days_left"),
    [
        (datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC), 0),
        (datetime(2027, 1, 31, 0, 0, tzinfo=UTC), 0),
        (datetime(2027, 1, 30, 23, 59, 59, tzinfo=UTC), 1),
        (datetime(2027, 1, 1, tzinfo=UTC), 30),
        (RUN_OUT, -1),
    ],
)
def test_days_left_counts_utc_days_to_the_last_day(now, days_left):
    assert evaluate(snap(), now).days_left == days_left


def test_value_is_immutable():
    value = evaluate(snap(), START)
    with pytest.raises(AttributeError):
        value.state = GateState.UNREGISTERED  # type: ignore[misc]


def test_lock_time_and_holders_are_kept_only_while_they_apply():
    until = START + timedelta(minutes=15)
    locked = evaluate(snap("unregistered", locked_until=until), START)
    assert locked.locked_until == until and locked.lock_active
    after = evaluate(snap("unregistered", locked_until=until), until)
    assert after.locked_until is None and not after.lock_active
    admitted = evaluate(snap(), START, admitted=True, seat_holders=("node-b",))
    assert admitted.seat_holders == ()


# --- current_registration() ---------------------------------------------------------


@pytest.mark.django_db
def test_current_registration_follows_the_flows(
    frozen_clock, issue, django_capture_on_commit_callbacks
):
    assert current_registration().state == GateState.UNREGISTERED

    register(django_capture_on_commit_callbacks, issue, company="Beta Co", max_nodes=3)

    value = current_registration()
    assert value.state == GateState.REGISTERED
    assert (value.company, value.project, value.expires_at) == ("Beta Co", "Reports", EXPIRES)
    assert (value.nodes_used, value.max_nodes) == (1, 3)
    assert value.days_left == (EXPIRES - START.date()).days == 244
    restart(django_capture_on_commit_callbacks)
    assert current_registration().state == GateState.EXPIRED_DUE_TO_RESTART


@pytest.mark.django_db
def test_a_warm_cache_costs_no_query(frozen_clock, django_assert_num_queries):
    current_registration()
    with django_assert_num_queries(0):
        assert current_registration().state == GateState.UNREGISTERED


@pytest.mark.django_db
def test_one_request_sees_one_value(frozen_clock, issue, django_capture_on_commit_callbacks):
    request = RequestFactory().get("/")
    first = current_registration(request)

    register(django_capture_on_commit_callbacks, issue)

    # The same request keeps its answer (one lookup); the next request sees the change.
    assert current_registration(request) is first
    assert first.state == GateState.UNREGISTERED
    assert current_registration(RequestFactory().get("/")).state == GateState.REGISTERED


@pytest.mark.django_db
def test_license_runs_out_at_midnight_utc_after_its_last_day(
    frozen_clock, issue, django_capture_on_commit_callbacks
):
    register(django_capture_on_commit_callbacks, issue)
    frozen_clock.set(RUN_OUT - TICK)
    assert current_registration().state == GateState.REGISTERED
    frozen_clock.set(RUN_OUT)
    assert current_registration().state == GateState.LICENSE_EXPIRED


@pytest.mark.django_db
def test_snapshot_cache_ignores_a_value_of_another_shape(frozen_clock):
    # As left by a node running other code: a miss, not a crash and not believed.
    cache.set(status.CACHE_KEY, {"state": "registered", "unknown_field": 1})
    assert status.cached_snapshot().state == "unregistered"


# --- @registration_required on the Reports page --------------------------------------


def reason(body: str) -> str:
    start = body.index('id="not-registered-reason">') + len('id="not-registered-reason">')
    return body[start : body.index("</p>", start)]


@pytest.mark.django_db
def test_reports_refused_before_registration_open_after_refused_after_restart(
    manager_client, frozen_clock, issue, django_capture_on_commit_callbacks
):
    before = manager_client.get(REPORTS)
    assert before.status_code == 403
    assert reason(before.content.decode()) == "This project is not registered."
    assert "no-store" in before["Cache-Control"]

    register(django_capture_on_commit_callbacks, issue)
    after = manager_client.get(REPORTS)
    assert after.status_code == 200
    assert 'id="no-reports"' in after.content.decode()

    restart(django_capture_on_commit_callbacks)
    again = manager_client.get(REPORTS)
    assert again.status_code == 403
    assert reason(again.content.decode()) == RESTART_TEXT


@pytest.mark.django_db
def test_refusal_links_to_registration_management_only_for_managers(
    manager_client, staff_client, frozen_clock
):
    link = f'id="manage-registration" href="{REGISTRATION}"'
    assert link in manager_client.get(REPORTS).content.decode()
    staff_page = staff_client.get(REPORTS)
    assert staff_page.status_code == 403
    assert link not in staff_page.content.decode()
    assert "Ask an administrator" in staff_page.content.decode()


@pytest.mark.django_db
def test_registered_reports_open_to_any_logged_in_user(
    staff_client, frozen_clock, issue, django_capture_on_commit_callbacks
):
    register(django_capture_on_commit_callbacks, issue)
    assert staff_client.get(REPORTS).status_code == 200


@pytest.mark.django_db
def test_license_expired_reason(
    manager_client, frozen_clock, issue, django_capture_on_commit_callbacks
):
    register(django_capture_on_commit_callbacks, issue)
    frozen_clock.set(RUN_OUT)
    response = manager_client.get(REPORTS)
    assert response.status_code == 403
    assert reason(response.content.decode()) == "License expired on 2027/01/31"


@pytest.mark.django_db
def test_locked_reason(manager_client, frozen_clock, issue, django_capture_on_commit_callbacks):
    lock(django_capture_on_commit_callbacks, issue)
    response = manager_client.get(REPORTS)
    assert response.status_code == 403
    assert reason(response.content.decode()) == "Registration is locked until 12:15:00"
    frozen_clock.advance(minutes=15)
    assert reason(manager_client.get(REPORTS).content.decode()) == (
        "This project is not registered."
    )


@pytest.mark.django_db
def test_not_admitted_reason(
    manager, frozen_clock, issue, django_capture_on_commit_callbacks, monkeypatch
):
    register(django_capture_on_commit_callbacks, issue, max_nodes=2)
    # What the node's start-up records when the cluster's seats are all taken.
    monkeypatch.setattr(admission.local, "admitted", False)
    monkeypatch.setattr(admission.local, "seat_holders", ("node-b", "node-c"))
    # Called directly: over HTTP the node's admission middleware answers first.
    request = RequestFactory().get(REPORTS)
    request.user = manager
    response = reports_page(request)
    assert response.status_code == 403
    assert reason(response.content.decode()) == (
        "License Exhausted: all 2 seats of the license are held by node-b, node-c. "
        "This node is not admitted."
    )


@pytest.mark.django_db
def test_reports_anonymous_is_sent_to_log_in(client, frozen_clock):
    response = client.get(REPORTS)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_reports_is_get_only(manager_client, csrf_client, frozen_clock):
    assert manager_client.post(REPORTS).status_code == 405
    assert manager_client.put(REPORTS).status_code == 405
    # A browser-like POST without a token is stopped by CSRF before anything else.
    assert csrf_client.post(REPORTS).status_code == 403


# --- RegistrationRequiredMixin --------------------------------------------------------


class GatedView(LoginRequiredMixin, RegistrationRequiredMixin, View):
    def get(self, request):
        return HttpResponse("open")


@pytest.mark.django_db
def test_mixin_guards_a_class_view(
    manager, frozen_clock, issue, django_capture_on_commit_callbacks
):
    def get():
        request = RequestFactory().get("/gated")
        request.user = manager
        return GatedView.as_view()(request)

    refused = get()
    assert refused.status_code == 403
    assert b"This project is not registered." in refused.content
    register(django_capture_on_commit_callbacks, issue)
    assert get().content == b"open"
    restart(django_capture_on_commit_callbacks)
    assert get().status_code == 403


@pytest.mark.django_db
def test_mixin_sends_anonymous_users_to_log_in_first(frozen_clock):
    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().get("/gated")
    request.user = AnonymousUser()
    assert GatedView.as_view()(request).status_code == 302


# --- Templates ------------------------------------------------------------------------

WATERMARK = 'id="unregistered-watermark"'


@pytest.mark.django_db
def test_watermark_on_every_page_until_registered(
    client, manager_client, frozen_clock, issue, django_capture_on_commit_callbacks
):
    assert WATERMARK in client.get(reverse("login")).content.decode()
    assert WATERMARK in manager_client.get(REPORTS).content.decode()

    register(django_capture_on_commit_callbacks, issue)
    assert WATERMARK not in client.get(reverse("login")).content.decode()
    assert WATERMARK not in manager_client.get(REPORTS).content.decode()

    restart(django_capture_on_commit_callbacks)
    assert WATERMARK in manager_client.get(REPORTS).content.decode()


@pytest.mark.django_db
def test_no_watermark_on_registration_management_which_says_the_state_itself(
    manager_client, frozen_clock, issue, django_capture_on_commit_callbacks
):
    # Unregistered, with a QR code open: neither the QR code nor the page is covered.
    _lic, text = issue()
    upload(django_capture_on_commit_callbacks, text)
    pages = [
        REGISTRATION,
        REGISTRATION + "?register=1",
        reverse("registration:version"),
        reverse("registration:license_request"),
    ]
    for path in pages:
        body = manager_client.get(path).content.decode()
        assert WATERMARK not in body, path
    assert 'id="qr-image"' in manager_client.get(REGISTRATION).content.decode()
    assert WATERMARK in manager_client.get(REPORTS).content.decode()


@pytest.mark.django_db
def test_nav_links_to_reports(manager_client, frozen_clock):
    assert f'href="{REPORTS}" id="nav-reports"' in manager_client.get(REGISTRATION).content.decode()


@pytest.mark.django_db
def test_template_tags_show_and_hide_features(
    frozen_clock, issue, django_capture_on_commit_callbacks
):
    template = Template(
        "{% load registration_tags %}[{% registration_state %}]"
        "{% current_registration as reg %}{% if reg.is_registered %}feature{% endif %}"
    )

    def render() -> str:
        return template.render(Context({"request": RequestFactory().get("/")}))

    assert render() == "[unregistered]"
    register(django_capture_on_commit_callbacks, issue)
    assert render() == "[registered]feature"


# --- Expiry warning on the console ----------------------------------------------------


def warning(body: str) -> str | None:
    marker = 'id="expiry-warning">'
    if marker not in body:
        return None
    start = body.index(marker) + len(marker)
    return body[start : body.index("</p>", start)]


@pytest.mark.django_db
def test_expiry_warning_from_the_warning_window(
    manager_client, frozen_clock, issue, django_capture_on_commit_callbacks, settings
):
    register(django_capture_on_commit_callbacks, issue)
    assert settings.LICENSE_EXPIRY_WARNING_DAYS == 30
    assert warning(manager_client.get(REGISTRATION).content.decode()) is None
    frozen_clock.set(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC))  # 31 days left
    assert warning(manager_client.get(REGISTRATION).content.decode()) is None
    frozen_clock.set(datetime(2027, 1, 1, tzinfo=UTC))
    assert warning(manager_client.get(REGISTRATION).content.decode()) == (
        "The license expires on 2027/01/31 (30 days left)."
    )
    frozen_clock.set(datetime(2027, 1, 30, 12, tzinfo=UTC))
    assert warning(manager_client.get(REGISTRATION).content.decode()) == (
        "The license expires on 2027/01/31 (1 day left)."
    )
    frozen_clock.set(RUN_OUT)
    assert warning(manager_client.get(REGISTRATION).content.decode()) == (
        "License expired on 2027/01/31"
    )


@pytest.mark.django_db
def test_expiry_warning_days_is_a_setting(
    manager_client, frozen_clock, issue, django_capture_on_commit_callbacks, settings
):
    register(django_capture_on_commit_callbacks, issue)
    settings.LICENSE_EXPIRY_WARNING_DAYS = 244
    assert warning(manager_client.get(REGISTRATION).content.decode()) == (
        "The license expires on 2027/01/31 (244 days left)."
    )
    settings.LICENSE_EXPIRY_WARNING_DAYS = 243
    assert warning(manager_client.get(REGISTRATION).content.decode()) is None


@pytest.mark.django_db
def test_expiry_warning_is_for_managers_only(
    staff, frozen_clock, issue, django_capture_on_commit_callbacks, settings
):
    register(django_capture_on_commit_callbacks, issue)
    settings.LICENSE_EXPIRY_WARNING_DAYS = 365
    template = Template("{% load registration_tags %}{% license_expiry_warning %}")
    request = RequestFactory().get("/")
    request.user = staff
    assert template.render(Context({"request": request})) == ""


def test_state_codes_are_stable():
    # Other services key on these strings; renaming one breaks them.
    assert [str(s) for s in GateState] == [
        "unregistered",
        "registered",
        "expired_due_to_restart",
        "license_expired",
        "locked",
        "not_admitted",
    ]
    assert {str(RegistrationState.EXPIRED_DUE_TO_RESTART)} <= {str(s) for s in GateState}
