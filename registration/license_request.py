"""The license request email an admin sends the vendor: recipient, title, body, mailto.

Pure: everything comes in as arguments (the form's values, the version facts of
``flows.version_information()`` and the recipient setting). The email is always in
English whatever the console's language: the vendor's business staff read it by its
fixed field names, as the product documentation shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote

from registration.protocol.text import format_date

REGISTRATION_METHOD = "Local Container Authentication"
# RFC 6068: line breaks in a mailto body are CRLF, percent-encoded as %0D%0A.
MAILTO_NEWLINE = "\r\n"


@dataclass(frozen=True)
class LicenseRequest:
    """What the admin states about the contract."""

    company: str
    project_name: str
    contract_date: date
    max_nodes: int = 1


@dataclass(frozen=True)
class LicenseRequestEmail:
    recipient: str
    subject: str
    body: str

    @property
    def mailto(self) -> str:
        """Return a mailto: URL that opens this email in the admin's mail client."""
        crlf_body = MAILTO_NEWLINE.join(self.body.split("\n"))
        # safe="" so that &, =, ?, + and # in a company name cannot end a field early.
        return (
            f"mailto:{quote(self.recipient, safe='@')}"
            f"?subject={quote(self.subject, safe='')}&body={quote(crlf_body, safe='')}"
        )

    @property
    def text(self) -> str:
        """Return the whole email as plain text, for machines with no mail client."""
        return f"To: {self.recipient}\nSubject: {self.subject}\n\n{self.body}\n"


def subject_for(company: str, app_name: str) -> str:
    return f"Official Authorization Document of {company}'s Registration for {app_name}"


def body_lines(request: LicenseRequest, version: Mapping[str, str]) -> list[str]:
    """Return the body, one field a line, in the order the vendor expects.

    The last lines carry what the vendor's issue_license needs besides the version:
    the application name and the project content must match this installation exactly.
    The installation id comes last: the vendor's support staff find this installation's
    binding by it (the Bindings admin), for a move to another server.
    """
    return [
        f"Company name: {request.company}",
        f"Project name: {request.project_name}",
        f"Contract signing date: {format_date(request.contract_date)}",
        f"Registration method: {REGISTRATION_METHOD}",
        f"Maximum number of registration: {request.max_nodes}",
        f"Project Version: {version['minor_version']} (build {version['build_version']})",
        f"Build date: {_slash_iso_date(version['build_date'])}",
        f"App name: {version['app_name']}",
        f"Project content: {version['project_content']}",
        f"Installation ID: {version['installation_id']}",
    ]


def build_email(
    request: LicenseRequest, version: Mapping[str, str], recipient: str
) -> LicenseRequestEmail:
    """Build the license request email for request on this installation."""
    return LicenseRequestEmail(
        recipient=recipient,
        subject=subject_for(request.company, version["app_name"]),
        body="\n".join(body_lines(request, version)),
    )


def _slash_iso_date(iso: str) -> str:
    # Settings give the build date as YYYY-MM-DD; the email writes every date YYYY/MM/DD.
    try:
        return format_date(date.fromisoformat(iso))
    except ValueError:
        return iso
