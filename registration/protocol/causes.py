"""Why a license is refused: every cause at once, in the words admins see.

``validate`` takes the license file, the AUTH method the admin picked and this
installation's local facts, and returns the verified License with no causes, or every
cause that applies. A file that fails verification gives exactly one cause,
``license_content_incorrect``; its precise reason goes to the server log only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from registration.protocol.license import License, LicenseError, minor_version, verify_license
from registration.protocol.text import format_date, format_datetime
from registration.protocol.validity import is_expired

log = logging.getLogger(__name__)

AUTH_METHOD_CONTAINER = "container"
# AUTH method -> the license type it accepts.
AUTH_METHOD_LICENSE_TYPE = {AUTH_METHOD_CONTAINER: "container"}


class CauseCode(StrEnum):
    LICENSE_EXPIRED = "license_expired"
    VERSION_MISMATCH = "version_mismatch"
    APP_NAME_MISMATCH = "app_name_mismatch"
    LICENSE_EXHAUSTED = "license_exhausted"
    PROJECT_CONTENT_MISMATCH = "project_content_mismatch"
    LICENSE_TYPE_MISMATCH = "license_type_mismatch"
    BUILD_NOT_SUPPORTED = "build_not_supported"
    CLOCK_SKEW = "clock_skew"
    LICENSE_SUPERSEDED = "license_superseded"
    LICENSE_CONTENT_INCORRECT = "license_content_incorrect"


TITLES: dict[CauseCode, Promise] = {
    CauseCode.LICENSE_EXPIRED: _("License Expired"),
    CauseCode.VERSION_MISMATCH: _("Version Mismatch"),
    CauseCode.APP_NAME_MISMATCH: _("App Name Mismatch"),
    CauseCode.LICENSE_EXHAUSTED: _("License Exhausted"),
    CauseCode.PROJECT_CONTENT_MISMATCH: _("Project Content Mismatch"),
    CauseCode.LICENSE_TYPE_MISMATCH: _("License Type/Version Mismatch"),
    CauseCode.BUILD_NOT_SUPPORTED: _("Build Not Supported"),
    CauseCode.CLOCK_SKEW: _("Cluster Clock Skew"),
    CauseCode.LICENSE_SUPERSEDED: _("License Superseded"),
    CauseCode.LICENSE_CONTENT_INCORRECT: _("License content is incorrect"),
}


@dataclass(frozen=True)
class Cause:
    """One reason for refusing a license: a stable code, a title and detail lines."""

    code: CauseCode
    details: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return str(TITLES[self.code])

    def as_dict(self) -> dict[str, object]:
        return {"code": str(self.code), "title": self.title, "details": list(self.details)}


@dataclass(frozen=True)
class NodeClock:
    """A live node and its clock's offset from the database's clock, in seconds."""

    name: str
    offset_seconds: float


@dataclass(frozen=True)
class LocalFacts:
    """What this installation is, against which a license is checked."""

    app_name: str
    app_version: str
    project_content: str
    build_date: date
    min_build_date: date
    live_nodes: int
    now: datetime
    node_clocks: Sequence[NodeClock] = field(default_factory=tuple)
    max_clock_skew_seconds: float = 5.0
    # How far the vendor's clock, which stamps issued_at, may run ahead of this one: one
    # challenge lifetime (CHALLENGE_TTL_SECONDS), the same allowance the vendor's phone page
    # gives the two clocks the other way round.
    max_vendor_clock_ahead_seconds: float = 300.0


@dataclass(frozen=True)
class Validation:
    """The outcome of validate(): a license with no causes means accepted."""

    license: License | None
    causes: tuple[Cause, ...]

    @property
    def accepted(self) -> bool:
        return self.license is not None and not self.causes

    @property
    def codes(self) -> list[str]:
        return [str(cause.code) for cause in self.causes]


# Causes both sides give in the same words: the console when a license is checked, the
# vendor's phone page when a scan is.


def license_expired(expires_at: date) -> Cause:
    """The license's last day has passed."""
    return Cause(
        CauseCode.LICENSE_EXPIRED,
        (str(_("Expiration date: %(date)s") % {"date": format_date(expires_at)}),),
    )


def license_exhausted(nodes: int | None = None, max_nodes: int | None = None) -> Cause:
    """More nodes than the license allows; the counts when the caller knows them."""
    details = [
        str(
            _(
                "Cluster nodes exceed the maximum number of nodes that can be registered "
                "through the license."
            )
        )
    ]
    if nodes is not None and max_nodes is not None:
        details.append(str(_("Nodes: %(n)s, maximum: %(max)s") % {"n": nodes, "max": max_nodes}))
    return Cause(CauseCode.LICENSE_EXHAUSTED, tuple(details))


def clock_causes(facts: LocalFacts) -> list[Cause]:
    """Name every live node whose clock is further off than the cluster allows."""
    causes = []
    for node in facts.node_clocks:
        if abs(node.offset_seconds) > facts.max_clock_skew_seconds:
            causes.append(
                Cause(
                    CauseCode.CLOCK_SKEW,
                    (
                        str(
                            _(
                                "Node %(node)s: clock offset %(offset)+.1f s "
                                "(at most %(limit)s s allowed)."
                            )
                            % {
                                "node": node.name,
                                "offset": node.offset_seconds,
                                "limit": facts.max_clock_skew_seconds,
                            }
                        ),
                    ),
                )
            )
    return causes


def check_license(lic: License, auth_method: str, facts: LocalFacts) -> list[Cause]:
    """Return every cause that stops lic from being used here (empty when none)."""
    causes: list[Cause] = []
    if is_expired(lic.expires_at, facts.now):
        causes.append(license_expired(lic.expires_at))
    causes.extend(_mismatches(lic, facts))
    if AUTH_METHOD_LICENSE_TYPE.get(auth_method) != lic.license_type:
        causes.append(
            Cause(
                CauseCode.LICENSE_TYPE_MISMATCH,
                (
                    str(
                        _(
                            "The selected authentication method does not match the uploaded "
                            "license type."
                        )
                    ),
                ),
            )
        )
    if auth_method == AUTH_METHOD_CONTAINER and facts.build_date < facts.min_build_date:
        causes.append(
            Cause(
                CauseCode.BUILD_NOT_SUPPORTED,
                (
                    str(
                        _("Local container authentication needs a build dated %(min)s or later.")
                        % {"min": format_date(facts.min_build_date)}
                    ),
                    str(_("Local build date: %(d)s") % {"d": format_date(facts.build_date)}),
                ),
            )
        )
    causes.extend(clock_causes(facts))
    future = issued_in_the_future(lic, facts)
    if future is not None:
        causes.append(future)
    return causes


def issued_in_the_future(lic: License, facts: LocalFacts) -> Cause | None:
    """A license issued later than now, beyond what the two clocks may disagree by, is
    not a license the vendor made yet: a 9999-12-31 one would make every real license
    after it look older ("superseded"). No cause says "from the future", so it gets the
    catch-all, with the two times to compare."""
    if lic.issued_at <= facts.now + timedelta(seconds=facts.max_vendor_clock_ahead_seconds):
        return None
    return Cause(
        CauseCode.LICENSE_CONTENT_INCORRECT,
        (
            str(
                _("License issued at %(at)s UTC, later than this server's time, %(now)s UTC.")
                % {
                    "at": format_datetime(lic.issued_at.astimezone(UTC)),
                    "now": format_datetime(facts.now.astimezone(UTC)),
                }
            ),
        ),
    )


def _mismatches(lic: License, facts: LocalFacts) -> list[Cause]:
    """The license's fields that this installation's facts contradict, in the table's order."""
    causes = []
    local_minor = minor_version(facts.app_version)
    if lic.app_version != local_minor:
        causes.append(
            Cause(
                CauseCode.VERSION_MISMATCH,
                (
                    str(_("Certified application version : %(v)s") % {"v": lic.app_version}),
                    str(_("Local application version : %(v)s") % {"v": local_minor}),
                ),
            )
        )
    if lic.app_name != facts.app_name:
        causes.append(
            Cause(
                CauseCode.APP_NAME_MISMATCH,
                (
                    str(_("Authentication application name: %(n)s") % {"n": lic.app_name}),
                    str(_("Local application name: %(n)s") % {"n": facts.app_name}),
                ),
            )
        )
    if facts.live_nodes > lic.max_nodes:
        causes.append(license_exhausted())
    if lic.project_content != facts.project_content:
        causes.append(
            Cause(
                CauseCode.PROJECT_CONTENT_MISMATCH,
                (
                    str(_("Authentication project content: %(c)s") % {"c": lic.project_content}),
                    str(_("Local project content: %(c)s") % {"c": facts.project_content}),
                ),
            )
        )
    return causes


def validate(
    data: bytes,
    auth_method: str,
    facts: LocalFacts,
    pinned_keys: Mapping[str, str],
    max_bytes: int,
) -> Validation:
    """Verify data as a license and check it against facts; return every cause at once."""
    try:
        lic = verify_license(data, pinned_keys, max_bytes)
    except LicenseError as exc:
        log.warning("License refused as incorrect: %s", exc)
        return Validation(None, (Cause(CauseCode.LICENSE_CONTENT_INCORRECT),))
    return Validation(lic, tuple(check_license(lic, auth_method, facts)))
