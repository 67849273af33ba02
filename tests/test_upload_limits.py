"""Upload limits on the console: empty, huge, non-UTF-8 and too many files; never a 500."""

from __future__ import annotations

import sys
import tracemalloc
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.urls import reverse

from registration.models import InstalledLicense
from registration.uploads import CappedMemoryUploadHandler
from tests.conftest import make_license

pytestmark = pytest.mark.django_db

BOUNDARY = "----licserver-test-boundary"
TEN_MB = 10 * 1024 * 1024


def multipart_head(filename: str = "Container.lic") -> bytes:
    return (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="auth_method"\r\n\r\n'
        "container\r\n"
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="license"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


class LazyBody:
    """A request body of a file of `size` bytes, made while it is read, never held whole."""

    def __init__(self, size: int) -> None:
        self.parts = [multipart_head(), None, TAIL]
        self.remaining = size
        self.length = len(self.parts[0]) + size + len(TAIL)
        self.read_bytes = 0
        self.largest_read = 0

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        want = self.length if n is None or n < 0 else n
        while len(out) < want and self.parts:
            part = self.parts[0]
            if part is None:
                take = min(want - len(out), self.remaining)
                out += b"A" * take
                self.remaining -= take
                if self.remaining == 0:
                    self.parts.pop(0)
            else:
                take = want - len(out)
                out += part[:take]
                rest = part[take:]
                if rest:
                    self.parts[0] = rest
                else:
                    self.parts.pop(0)
        self.read_bytes += len(out)
        self.largest_read = max(self.largest_read, len(out))
        return bytes(out)

    def readline(self, limit: int = -1) -> bytes:
        line = bytearray()
        while not line.endswith(b"\n") and (limit < 0 or len(line) < limit):
            byte = self.read(1)
            if not byte:
                break
            line += byte
        return bytes(line)


def post_stream(client, body: LazyBody):
    # With no data the test client sets no body headers: give them, and the stream, here.
    return client.generic(
        "POST",
        reverse("registration:upload"),
        **{
            "wsgi.input": body,
            "CONTENT_LENGTH": str(body.length),
            "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
        },
    )


def upload(client, content: bytes, name: str = "Container.lic"):
    """Post the file; a refusal is followed to the page it redirects to (422)."""
    body = multipart_head(name) + content + TAIL
    return client.post(
        reverse("registration:upload"),
        body,
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        follow=True,
    )


# Python announces every temporary file it creates (audit event "tempfile.mkstemp");
# a hook cannot be removed, so it records only while a test asks it to.
_recording: list[list[str]] = []


def _audit(event: str, args: tuple) -> None:
    if _recording and event == "tempfile.mkstemp":
        _recording[-1].append(str(args[0]))


sys.addaudithook(_audit)


@contextmanager
def temp_files_created():
    created: list[str] = []
    _recording.append(created)
    try:
        yield created
    finally:
        _recording.pop()


def test_the_only_upload_handler_is_the_capped_memory_one(manager_client, sign):
    response = upload(manager_client, sign(make_license()).encode())
    handlers = response.wsgi_request.upload_handlers
    assert [type(h) for h in handlers] == [CappedMemoryUploadHandler]


def test_an_empty_file_is_refused_with_400(manager_client):
    response = upload(manager_client, b"")

    assert response.status_code == 400
    assert "The file is empty." in response.content.decode()
    assert not InstalledLicense.objects.exists()


def test_a_blank_file_is_refused_with_400(manager_client):
    response = upload(manager_client, b" \r\n\t\n")

    assert response.status_code == 400
    assert "The file is empty." in response.content.decode()
    assert not InstalledLicense.objects.exists()


def test_a_10_mb_file_is_refused_with_413_without_being_held_whole(manager_client):
    body = LazyBody(TEN_MB)
    tracemalloc.start()
    try:
        with temp_files_created() as created:
            response = post_stream(manager_client, body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 413
    text = response.content.decode()
    assert "The file is larger than 64 KiB; a Container.lic is much smaller." in text
    # The parser drained the stream chunk by chunk and dropped it.
    assert body.read_bytes == body.length
    assert body.largest_read <= 1024 * 1024
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes"
    assert created == []
    assert "license" not in response.wsgi_request.FILES
    assert response.wsgi_request.upload_too_large is True
    assert not InstalledLicense.objects.exists()


def test_a_file_one_byte_over_the_cap_is_refused_with_413(manager_client):
    response = upload(manager_client, b"A" * (settings.LICENSE_MAX_BYTES + 1))

    assert response.status_code == 413
    assert "larger than 64 KiB" in response.content.decode()
    assert not InstalledLicense.objects.exists()


def test_a_file_at_the_cap_is_read_and_judged_as_a_license(manager_client):
    response = upload(manager_client, b"A" * settings.LICENSE_MAX_BYTES)

    assert response.status_code == 422
    assert "License content is incorrect" in response.content.decode()
    assert not InstalledLicense.objects.exists()


def test_non_utf8_bytes_are_license_content_incorrect(manager_client):
    response = upload(manager_client, b"\xff\xfe\xfa\x80 not text \xc3\x28")

    assert response.status_code == 422
    text = response.content.decode()
    assert "License content is incorrect" in text
    assert 'data-code="license_content_incorrect"' in text
    assert not InstalledLicense.objects.exists()


def test_101_files_in_one_request_is_a_400_not_a_500(manager_client):
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="auth_method"\r\n\r\ncontainer']
    for i in range(101):
        parts.append(
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="license"; filename="f{i}.lic"\r\n'
            "Content-Type: application/octet-stream\r\n\r\nx"
        )
    body = ("\r\n".join(parts) + f"\r\n--{BOUNDARY}--\r\n").encode()

    response = manager_client.generic(
        "POST",
        reverse("registration:upload"),
        body,
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
    )

    assert response.status_code == 400
    assert not InstalledLicense.objects.exists()


def test_a_malformed_multipart_body_is_a_400_not_a_500(manager_client):
    response = manager_client.generic(
        "POST",
        reverse("registration:upload"),
        b"--nope\r\nthis is not multipart",
        content_type="multipart/form-data; boundary=",
    )

    assert response.status_code == 400
    assert not InstalledLicense.objects.exists()


def test_a_missing_file_is_a_400_with_a_message(manager_client):
    response = manager_client.post(reverse("registration:upload"), {"auth_method": "container"})

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not InstalledLicense.objects.exists()
