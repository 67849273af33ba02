"""The license request email an admin sends the vendor: recipient, title, body, mailto.

Pure: everything comes in as arguments (the form's values, the version facts of
``flows.version_information()`` and the recipient setting). The email is always in
English whatever the console's language: the vendor's business staff read it by its
fixed field names, as the product documentation shows them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote

from registration.protocol.license import MAX_NODES_LIMIT, TEXT_FIELD_MAX
from registration.protocol.text import format_date, has_control_characters

REGISTRATION_METHOD = "Local Container Authentication"

# The body's field names, one a line ("Company name: Acme Ltd"): the one list the writer
# (body_lines) and the reader (parse_request_email) share, so they cannot drift apart.
COMPANY = "Company name"
PROJECT = "Project name"
CONTRACT_DATE = "Contract signing date"
METHOD = "Registration method"
MAX_NODES = "Maximum number of registration"
VERSION = "Project Version"
BUILD_DATE = "Build date"
APP_NAME = "App name"
CONTENT = "Project content"
INSTALLATION = "Installation ID"
LABELS = (
    COMPANY,
    PROJECT,
    CONTRACT_DATE,
    METHOD,
    MAX_NODES,
    VERSION,
    BUILD_DATE,
    APP_NAME,
    CONTENT,
    INSTALLATION,
)
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
        f"{COMPANY}: {request.company}",
        f"{PROJECT}: {request.project_name}",
        f"{CONTRACT_DATE}: {format_date(request.contract_date)}",
        f"{METHOD}: {REGISTRATION_METHOD}",
        f"{MAX_NODES}: {request.max_nodes}",
        f"{VERSION}: {version['minor_version']} (build {version['build_version']})",
        f"{BUILD_DATE}: {_slash_iso_date(version['build_date'])}",
        f"{APP_NAME}: {version['app_name']}",
        f"{CONTENT}: {version['project_content']}",
        f"{INSTALLATION}: {version['installation_id']}",
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


# --- Reading the email back (the vendor's Issue license form) -------------------------

# What a paste may be at most: the email is well under 2 KB.
EMAIL_MAX_CHARS = 20_000
# Every line the reader needs; the build date is for people, the method is checked if given.
REQUIRED_LABELS = (
    COMPANY,
    PROJECT,
    CONTRACT_DATE,
    MAX_NODES,
    VERSION,
    APP_NAME,
    CONTENT,
    INSTALLATION,
)
_LINE = re.compile(rf"({'|'.join(re.escape(label) for label in LABELS)})[ \t]*:[ \t]*(.*)")
_SLASH_DATE = re.compile(r"([0-9]{4})/([0-9]{2})/([0-9]{2})")
_VERSION = re.compile(r"((?:0|[1-9][0-9]{0,3})\.(?:0|[1-9][0-9]{0,3}))(?: \(build ([^()\s]+)\))?")
_QUOTE = re.compile(r"^(?:[ \t]*>)+[ \t]?")


@dataclass(frozen=True)
class RequestedLicense:
    """What a license request email asks for, read back by the vendor."""

    company: str
    project_name: str
    contract_date: date
    max_nodes: int
    app_version: str  # major.minor, as a license names it
    build_version: str
    app_name: str
    project_content: str
    installation_id: uuid.UUID


@dataclass(frozen=True)
class EmailProblem:
    """One thing wrong with a pasted email: the line it is about and a stable code
    (missing, duplicate, empty, too_long, control, not_date, not_number, not_version,
    not_uuid, other_method, too_long_email)."""

    label: str
    code: str


class RequestEmailError(ValueError):
    def __init__(self, problems: list[EmailProblem]) -> None:
        super().__init__("; ".join(f"{p.label}: {p.code}" for p in problems))
        self.problems = tuple(problems)


def parse_request_email(text: str) -> RequestedLicense:
    """Read a license request email (as build_email writes it, whole or only its body,
    with CRLF or quoted with "> " by a mail client) back into what it asks for.

    Raises RequestEmailError listing every problem found.
    """
    if len(text) > EMAIL_MAX_CHARS:
        raise RequestEmailError([EmailProblem("", "too_long_email")])
    values: dict[str, str] = {}
    problems: list[EmailProblem] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        match = _LINE.fullmatch(_QUOTE.sub("", raw).strip())
        if match is None:
            continue
        label, value = match[1], match[2].strip()
        if label in values and values[label] != value:
            problems.append(EmailProblem(label, "duplicate"))
        values.setdefault(label, value)
    for label in REQUIRED_LABELS:
        if label not in values:
            problems.append(EmailProblem(label, "missing"))
        elif not values[label]:
            problems.append(EmailProblem(label, "empty"))
    if values.get(METHOD, REGISTRATION_METHOD) != REGISTRATION_METHOD:
        problems.append(EmailProblem(METHOD, "other_method"))
    parsed: dict[str, object] = {}
    readers = {
        COMPANY: ("company", _text),
        PROJECT: ("project_name", _text),
        APP_NAME: ("app_name", _text),
        CONTENT: ("project_content", _text),
        CONTRACT_DATE: ("contract_date", _slash_date),
        MAX_NODES: ("max_nodes", _nodes),
        INSTALLATION: ("installation_id", _uuid),
    }
    for label, (name, reader) in readers.items():
        if values.get(label):
            try:
                parsed[name] = reader(values[label])
            except _Bad as bad:
                problems.append(EmailProblem(label, bad.code))
    if values.get(VERSION):
        match = _VERSION.fullmatch(values[VERSION])
        if match is None:
            problems.append(EmailProblem(VERSION, "not_version"))
        else:
            parsed["app_version"], parsed["build_version"] = match[1], match[2] or ""
    if problems:
        raise RequestEmailError(problems)
    return RequestedLicense(**parsed)  # type: ignore[arg-type]


class _Bad(Exception):
    def __init__(self, code: str) -> None:
        self.code = code


def _text(value: str) -> str:
    if len(value) > TEXT_FIELD_MAX:
        raise _Bad("too_long")
    if has_control_characters(value):
        raise _Bad("control")
    return value


def _slash_date(value: str) -> date:
    # The email writes every date as format_date does: YYYY/MM/DD.
    match = _SLASH_DATE.fullmatch(value)
    try:
        if match is None:
            raise ValueError(value)
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise _Bad("not_date") from None


def _nodes(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_NODES_LIMIT:
        raise _Bad("not_number")
    return int(value)


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _Bad("not_uuid") from None
