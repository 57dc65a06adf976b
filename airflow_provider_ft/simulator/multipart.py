"""multipart/form-data parsing with the standard library's email package (cgi is gone in 3.13)."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP


@dataclass
class UploadedFile:
    filename: str
    content: bytes


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)


class MultipartError(ValueError):
    pass


def parse_multipart(content_type: str, body: bytes) -> Form:
    """Split a multipart/form-data body into text fields and files (by form field name)."""
    if "boundary=" not in content_type:
        raise MultipartError("multipart/form-data body without a boundary")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise MultipartError("could not parse the multipart/form-data body")
    form = Form()
    parts = message.get_payload()
    assert isinstance(parts, list)
    for part in parts:
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise MultipartError("a multipart part has no form field name")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            form.files[name] = UploadedFile(filename=filename, content=data)
        else:
            charset = part.get_content_charset() or "utf-8"
            form.fields[name] = data.decode(charset, errors="replace")
    return form
