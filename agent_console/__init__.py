"""The agent console (issue 4): a Flask application for every staff role of R9.1.

``create_app(settings)`` builds it (:mod:`agent_console.app`); ``acikkapi console run`` serves
it with waitress (:mod:`agent_console.cli`). Conventions for adding screens: docs/console.md.
"""

from agent_console.app import create_app

__all__ = ["create_app"]
