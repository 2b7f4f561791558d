"""Form helpers of the console's screens (the coordination desk, the department inbox, the
walk-in desk and the agent's call panel): typed values out of ``request.form``, and
showing a refused action on the screen the form came from."""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import FileStorage

from agent_console.i18n import current_language
from agent_console.permissions import wants_json
from services.errors import DomainError, InvalidField, MissingField
from services.ticket_photos import PhotoUpload

E = TypeVar("E", bound=enum.Enum)
View = Callable[..., ResponseReturnValue]


def choice(enum_cls: type[E], raw: str | None, default: E) -> E:
    """``raw`` as a member of ``enum_cls`` (by value), else ``default``."""
    try:
        return enum_cls(raw) if raw else default
    except ValueError:
        return default


def form_text(name: str) -> str | None:
    """Form field ``name`` without surrounding blanks; ``None`` when empty or missing."""
    value = request.form.get(name, "").strip()
    return value or None


def form_int(name: str, label_tr: str, label_en: str) -> int:
    """Form field ``name`` as a whole number of at most six digits (:class:`MissingField`,
    :class:`InvalidField` naming it ``label_tr`` / ``label_en``)."""
    raw = request.form.get(name, "").strip()
    if not raw:
        raise MissingField(f"{label_tr} gerekli.", f"{label_en} is required.", field=name)
    if not raw.isdigit() or len(raw) > 6:
        raise InvalidField(f"{label_tr} geçersiz.", f"{label_en} is invalid.", field=name)
    return int(raw)


def form_token_ok(token: str) -> bool:
    """Whether ``token`` looks like the per-form token a page renders (idempotent posts)."""
    return token.isalnum() and 16 <= len(token) <= 64


def uploads(field: str) -> list[PhotoUpload]:
    """The files of form field ``field`` (camera photos), read into memory (the request
    size is capped by the application)."""
    files: list[FileStorage] = request.files.getlist(field)
    return [PhotoUpload(f.filename or "", f.read()) for f in files if f and f.filename]


def back_on_error(endpoint: str) -> Callable[[View], View]:
    """For form posts of a ticket screen: a refused action (a domain error) is shown on the
    screen the form came from, ``endpoint`` (with the same ``ticket_id``), instead of an
    error page. Scripts still get the JSON error."""

    def wrap(view: View) -> View:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            try:
                return view(*args, **kwargs)
            except DomainError as exc:
                if wants_json():
                    raise
                flash(exc.message(current_language()), "error")
                return redirect(url_for(endpoint, ticket_id=kwargs.get("ticket_id")))

        return wrapper

    return wrap
