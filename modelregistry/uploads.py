"""Model uploads: streamed to a temporary file with the SHA-256 computed while receiving.

The hash and size ride on the uploaded file (``.sha256``, ``.size``) so the registry never
reads a 500 MB artifact twice, and a body larger than the limit is cut off while it arrives
instead of after it has filled the disk.
"""

from __future__ import annotations

import hashlib

from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import HttpRequest

UPLOAD_TOO_LARGE = "opshero_upload_too_large"


class HashingUploadHandler(TemporaryFileUploadHandler):
    def __init__(self, request: HttpRequest | None = None, *, max_bytes: int) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.total = 0

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.digest = hashlib.sha256()

    def receive_data_chunk(self, raw_data: bytes, start: int):
        self.total += len(raw_data)
        if self.total > self.max_bytes:
            setattr(self.request, UPLOAD_TOO_LARGE, True)
            raise StopUpload(connection_reset=True)
        self.digest.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size: int):
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            uploaded.sha256 = self.digest.hexdigest()
        return uploaded


def install(request: HttpRequest, *, max_bytes: int) -> int | None:
    """Use the hashing handler for this request; returns the declared body size when it is
    already over the limit (the caller answers 413 without reading the body)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    # Multipart framing and the small form fields add a little over the file itself.
    if declared > max_bytes + 1024 * 1024:
        return declared
    request.upload_handlers = [HashingUploadHandler(request, max_bytes=max_bytes)]
    return None


def was_cut_off(request: HttpRequest) -> bool:
    return bool(getattr(request, UPLOAD_TOO_LARGE, False))
