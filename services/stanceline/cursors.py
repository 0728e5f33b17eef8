"""The opaque cursor format, in one place: the read model's pages, the changes feed and
its live stream hand cursors out, and the webhook dispatcher puts the feed's cursor in
each message, so a receiver can resume ``/v1/changes`` there."""

from __future__ import annotations

import base64
import json
from typing import Any


def encode_cursor(*key: Any) -> str:
    """An opaque cursor: the sort key of the last item served."""
    text = json.dumps(list(key), default=str, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def cursor_key(cursor: str) -> Any:
    """The JSON inside a cursor; ``ValueError`` (or ``binascii.Error``,
    ``UnicodeDecodeError``) when it is not one."""
    padded = cursor + "=" * (-len(cursor) % 4)
    raw = base64.b64decode(padded, altchars=b"-_", validate=True)
    return json.loads(raw.decode())
