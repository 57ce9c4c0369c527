"""The object every command receives through ``ctx.obj``: terminal output and ``abort``."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, NoReturn

from client.cli.terminal import Terminal

if TYPE_CHECKING:
    from client.api import Api


class Application:
    def __init__(self, *, verbosity: int = 0, color: bool | None = None, profile: str | None = None) -> None:
        self.verbosity = verbosity
        self.terminal = Terminal(verbosity=verbosity, color=color)
        self.profile_name = profile

    def api(self) -> Api:
        """The HTTP client for the chosen profile, aborting with one clear line when there is none or
        when its local stack is not running (before the command starts anything)."""
        from client.api import Api, Unreachable
        from client.profiles import ProfileError, load

        try:
            api = Api(load(self.profile_name))
            api.check_reachable()
        except ProfileError as exc:
            self.abort(str(exc))
        except Unreachable as exc:
            self.abort(exc.message)
        return api

    def call(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        """One request to the profile's ``service``; a refusal aborts with the service's own message."""
        from client.api import ApiError

        try:
            return self.api().call(service, method, path, **kwargs)
        except ApiError as exc:
            self.abort(exc.message)

    def abort(self, message: str, code: int = 1) -> NoReturn:
        """Print one clear error line on stderr and exit with ``code``."""
        self.terminal.display_error(message)
        sys.exit(code)

    def configure_logging(self, default: int = logging.INFO) -> None:
        """Log lines for long-running services: -v for debug, -q for warnings only."""
        level = default
        if self.verbosity > 0:
            level = logging.DEBUG
        elif self.verbosity < 0:
            level = logging.WARNING
        logging.basicConfig(
            level=level,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
