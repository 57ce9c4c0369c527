"""Why the runtime refused a request: a code the client maps to an exception, and a message.

Like Veracruz, a refused request fails its HTTP post with status 500; our body
is ``"<Code>: <message>"`` so clients can say exactly what went wrong.
"""

from __future__ import annotations


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def body(self) -> str:
        return f"{self.code}: {self.message}"
