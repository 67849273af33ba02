"""Validation lists every cause at once, in the words admins see."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pytest
from django.conf import settings

from registration import clock
from registration.protocol.causes import Cause, CauseCode, NodeClock, validate
from registration.protocol.validity import valid_until
from tests.conftest import make_license

EXHAUSTED_LINE = (
    "Cluster nodes exceed the maximum number of nodes that can be registered through the license."
)
TYPE_LINE = "The selected authentication method does not match the uploaded license type."


@pytest.fixture
def check(sign):
    """check(license, auth_method="container", **facts) -> Validation."""
    from tests.conftest import local_facts

    def _check(lic, auth_method: str = "container", **facts):
        return validate(
            sign(lic).encode("ascii"),
            auth_method,
            local_facts(**facts),
            settings.LICENSE_PUBLIC_KEYS,
            settings.LICENSE_MAX_BYTES,
        )

    return _check


def test_a_fitting_license_is_accepted_with_no_causes(check):
    lic = make_license()
    result = check(lic)
    assert result.accepted
    assert result.license == lic
    assert result.causes == ()


def test_license_expired_alone(check):
    result = check(make_license(expires_at=date(2019, 2, 22)))

    assert result.causes == (Cause(CauseCode.LICENSE_EXPIRED, ("Expiration date: 2019/02/22",)),)
    assert result.causes[0].title == "License Expired"
    assert not result.accepted


def test_version_mismatch_alone(check):
    result = check(make_license(app_version="9.0"), app_version="10.0")

    assert result.causes == (
        Cause(
            CauseCode.VERSION_MISMATCH,
            ("Certified application version : 9.0", "Local application version : 10.0"),
        ),
    )
    assert result.causes[0].title == "Version Mismatch"


def test_app_name_mismatch_alone(check):
    result = check(make_license(app_name="Designer"))

    assert result.causes == (
        Cause(
            CauseCode.APP_NAME_MISMATCH,
            ("Authentication application name: Designer", "Local application name: ReportServer"),
        ),
    )
    assert result.causes[0].title == "App Name Mismatch"


def test_license_exhausted_alone(check):
    result = check(make_license(max_nodes=2), live_nodes=3)

    assert result.causes == (Cause(CauseCode.LICENSE_EXHAUSTED, (EXHAUSTED_LINE,)),)
    assert result.causes[0].title == "License Exhausted"


def test_node_count_equal_to_the_cap_is_not_exhausted(check):
    assert check(make_license(max_nodes=2), live_nodes=2).accepted


def test_project_content_mismatch_alone(check):
    result = check(make_license(project_content="dashboards"))

    assert result.causes == (
        Cause(
            CauseCode.PROJECT_CONTENT_MISMATCH,
            ("Authentication project content: dashboards", "Local project content: reports"),
        ),
    )
    assert result.causes[0].title == "Project Content Mismatch"


@pytest.mark.parametrize("license_type", ["machine", "public-cloud", "private-cloud"])
def test_license_type_mismatch_alone(check, license_type):
    result = check(make_license(license_type=license_type))

    assert result.causes == (Cause(CauseCode.LICENSE_TYPE_MISMATCH, (TYPE_LINE,)),)
    assert result.causes[0].title == "License Type/Version Mismatch"


def test_an_unknown_auth_method_is_a_type_mismatch(check):
    assert check(make_license(), auth_method="machine").codes == ["license_type_mismatch"]


def test_build_not_supported_alone(check):
    result = check(make_license(), build_date=date(2021, 10, 29))

    assert result.codes == ["build_not_supported"]
    assert result.causes[0].details == (
        "Local container authentication needs a build dated 2021/10/30 or later.",
        "Local build date: 2021/10/29",
    )


def test_build_dated_the_minimum_day_is_supported(check):
    assert check(make_license(), build_date=date(2021, 10, 30)).accepted


def test_clock_skew_alone_names_the_node(check):
    clocks = (NodeClock("node-a", 0.4), NodeClock("node-b", -7.25), NodeClock("node-c", 5.0))
    result = check(make_license(), node_clocks=clocks, max_clock_skew_seconds=5.0)

    assert result.causes == (
        Cause(CauseCode.CLOCK_SKEW, ("Node node-b: clock offset -7.2 s (at most 5.0 s allowed).",)),
    )


def test_every_cause_at_once(check):
    lic = make_license(
        expires_at=date(2019, 2, 22),
        app_version="9.0",
        app_name="Designer",
        max_nodes=1,
        project_content="dashboards",
        license_type="machine",
    )
    result = check(
        lic,
        app_version="10.0",
        live_nodes=2,
        build_date=date(2020, 1, 1),
        node_clocks=(NodeClock("node-b", 60.0),),
    )

    assert result.license == lic
    assert result.codes == [
        "license_expired",
        "version_mismatch",
        "app_name_mismatch",
        "license_exhausted",
        "project_content_mismatch",
        "license_type_mismatch",
        "build_not_supported",
        "clock_skew",
    ]
    assert result.causes[0].details == ("Expiration date: 2019/02/22",)
    assert result.causes[1].details == (
        "Certified application version : 9.0",
        "Local application version : 10.0",
    )
    assert not result.accepted


def test_a_license_issued_later_than_now_plus_the_allowed_skew_is_incorrect(check):
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    lic = make_license(issued_at=now + timedelta(seconds=301))

    result = check(lic, now=now, max_vendor_clock_ahead_seconds=300)

    assert result.license == lic
    assert result.causes == (
        Cause(
            CauseCode.LICENSE_CONTENT_INCORRECT,
            (
                "License issued at 2026/06/01 12:05:01 UTC, later than this server's time, "
                "2026/06/01 12:00:00 UTC.",
            ),
        ),
    )
    assert not result.accepted


def test_a_license_issued_within_the_allowed_skew_ahead_is_accepted(check):
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert check(make_license(issued_at=now), now=now).accepted
    ahead = make_license(issued_at=now + timedelta(seconds=300))
    assert check(ahead, now=now, max_vendor_clock_ahead_seconds=300).accepted
    assert not check(ahead, now=now, max_vendor_clock_ahead_seconds=299).accepted


def test_a_license_issued_on_the_last_representable_second_is_refused_not_a_crash(check):
    lic = make_license(issued_at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))

    result = check(lic)

    assert result.codes == ["license_content_incorrect"]
    assert "9999/12/31 23:59:59 UTC" in result.causes[0].details[0]


def test_the_allowed_skew_is_one_challenge_lifetime(settings):
    from registration.facts import configured_facts

    settings.CHALLENGE_TTL_SECONDS = 120

    assert (
        configured_facts(datetime(2026, 6, 1, tzinfo=UTC), 1).max_vendor_clock_ahead_seconds == 120
    )


def test_expiry_edge_uses_the_end_of_the_day_utc(check):
    lic = make_license(expires_at=date(2027, 1, 31))
    assert valid_until(lic.expires_at) == datetime(2027, 2, 1, tzinfo=UTC)

    last_second = valid_until(lic.expires_at) - timedelta(seconds=1)
    assert last_second == datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC)
    assert check(lic, now=last_second).accepted
    assert check(lic, now=last_second + timedelta(microseconds=999_999)).accepted

    result = check(lic, now=valid_until(lic.expires_at))
    assert result.codes == ["license_expired"]
    assert result.causes[0].details == ("Expiration date: 2027/01/31",)


def test_expiry_edge_with_the_injected_clock(check):
    lic = make_license(expires_at=date(2027, 1, 31))
    with clock.use(clock.FrozenClock(datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC))) as frozen:
        assert check(lic, now=clock.now()).accepted
        frozen.advance(seconds=1)
        assert check(lic, now=clock.now()).codes == ["license_expired"]


def test_expiry_compares_in_utc_whatever_the_zone_of_now(check):
    from zoneinfo import ZoneInfo

    lic = make_license(expires_at=date(2027, 1, 31))
    # 07:30 on Feb 1 in Shanghai is still Jan 31, 23:30 UTC.
    shanghai = datetime(2027, 2, 1, 7, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert check(lic, now=shanghai).accepted
    assert check(lic, now=shanghai + timedelta(hours=1)).codes == ["license_expired"]


@pytest.mark.parametrize(
    "licensed, local, accepted",
    [
        ("11.0", "11.0.20", True),
        ("11.0", "11.0", True),
        ("11.0", "11.0.0.1", True),
        ("11.1", "11.0.20", False),
        ("11.0", "11.1.0", False),
        ("1.0", "11.0.20", False),
        ("11.0", "110.20", False),
    ],
)
def test_version_matching_compares_major_minor(check, licensed, local, accepted):
    result = check(make_license(app_version=licensed), app_version=local)
    assert result.accepted is accepted
    if not accepted:
        assert result.codes == ["version_mismatch"]


def test_minor_mismatch_shows_the_local_minor_version(check):
    result = check(make_license(app_version="11.1"), app_version="11.0.20")
    assert result.causes[0].details == (
        "Certified application version : 11.1",
        "Local application version : 11.0",
    )


def test_license_content_incorrect_has_no_details_and_logs_the_reason(sign, caplog):
    from tests.conftest import local_facts

    text = sign(make_license()).replace("\n", "\nGarbage!\n", 1)
    with caplog.at_level(logging.WARNING, logger="registration.protocol.causes"):
        result = validate(
            text.encode("ascii"),
            "container",
            local_facts(),
            settings.LICENSE_PUBLIC_KEYS,
            settings.LICENSE_MAX_BYTES,
        )

    assert result.license is None
    assert result.causes == (Cause(CauseCode.LICENSE_CONTENT_INCORRECT),)
    assert result.causes[0].title == "License content is incorrect"
    assert result.causes[0].details == ()
    assert result.codes == ["license_content_incorrect"]
    assert [r.getMessage() for r in caplog.records if r.name == "registration.protocol.causes"] == [
        "License refused as incorrect: armor body has a character outside base64"
    ]


def test_a_refused_file_gets_no_other_cause_even_if_facts_are_off(sign, caplog):
    from tests.conftest import local_facts

    facts = local_facts(app_version="1.0", live_nodes=99, build_date=date(2000, 1, 1))
    with caplog.at_level(logging.WARNING, logger="registration.protocol.causes"):
        result = validate(
            b"not a license",
            "container",
            facts,
            settings.LICENSE_PUBLIC_KEYS,
            settings.LICENSE_MAX_BYTES,
        )
    assert result.codes == ["license_content_incorrect"]
    assert "armor lines missing" in caplog.text


def test_cause_as_dict_is_stable():
    cause = Cause(CauseCode.LICENSE_EXPIRED, ("Expiration date: 2019/02/22",))
    assert cause.as_dict() == {
        "code": "license_expired",
        "title": "License Expired",
        "details": ["Expiration date: 2019/02/22"],
    }
