"""Upload handling: licenses are small, so keep them in memory and never spill to disk."""

from __future__ import annotations

from io import BytesIO

from django.conf import settings
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile


class CappedMemoryUploadHandler(FileUploadHandler):
    """Hold each uploaded file in memory, up to LICENSE_MAX_BYTES.

    A larger file is skipped: the parser reads the rest of it chunk by chunk and drops
    it, so memory stays bounded and no temporary file is ever written. The view sees
    ``request.upload_too_large`` and answers 413.
    """

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.buffer = BytesIO()
        self.size = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.size += len(raw_data)
        if self.size > settings.LICENSE_MAX_BYTES:
            self.request.upload_too_large = True
            self.buffer = BytesIO()
            raise SkipFile()
        self.buffer.write(raw_data)

    def file_complete(self, file_size: int) -> InMemoryUploadedFile:
        self.buffer.seek(0)
        return InMemoryUploadedFile(
            file=self.buffer,
            field_name=self.field_name,
            name=self.file_name,
            content_type=self.content_type,
            size=file_size,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )
