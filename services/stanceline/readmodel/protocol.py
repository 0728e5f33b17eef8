"""uvicorn's httptools protocol, answering the requests it rejects itself as problem+json.

Some requests never reach the app: httptools parses the request target with 16-bit
offsets, so a URL over 65,535 bytes fails to parse (`url is too long`), and bytes that
are not HTTP/1.1 fail too. uvicorn answers both with a text/plain 400 of its own. Here
the same moment answers with the problem+json every other error has: 414 for a target
too long, 400 for anything else that does not parse. (uvicorn's h11 protocol has its own
limit, ``h11_max_incomplete_event_size``; the API runs httptools, as ``stanceline api``
names it.)
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from stanceline.readmodel.problems import PROBLEM_JSON, Problem

MAX_TARGET_BYTES = 65_535
"""The longest request target httptools can parse (its offsets are 16 bits)."""
PROTOCOL = "stanceline.readmodel.protocol:ProblemHttpToolsProtocol"
"""What uvicorn's ``http=`` takes, also across ``--workers`` (an import string)."""

_REASONS = {400: b"Bad Request", 414: b"URI Too Long"}


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        # Called once the parser has failed; ``self.url`` holds what it had read of the target.
        if len(self.url) > MAX_TARGET_BYTES:
            problem = Problem(
                type="/problems/uri-too-long",
                title="URI too long",
                status=414,
                detail=f"the request target is longer than {MAX_TARGET_BYTES:,} bytes",
            )
        else:
            problem = Problem(
                type="/problems/bad-request",
                title="Malformed HTTP request",
                status=400,
                detail="the request is not valid HTTP/1.1",
            )
        body = problem.model_dump_json(by_alias=True, exclude_none=True).encode()
        head = [b"HTTP/1.1 %d %s\r\n" % (problem.status, _REASONS[problem.status])]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        head += [
            b"content-type: " + PROBLEM_JSON.encode() + b"\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
            b"\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()
