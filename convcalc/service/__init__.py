"""The calculator as an HTTP service and an interactive design page: ``convcalc serve``
(the ``service`` extra: ``pip install 'convcalc[service]'``).

:func:`create_app` builds the FastAPI app (:mod:`convcalc.service.app`);
:class:`Limits` holds what one request may ask for.  Nothing here is imported by
``import convcalc``; FastAPI is imported only when the app is created.
"""

from __future__ import annotations

from typing import Any

from .limits import Limits

__all__ = ["Limits", "create_app"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """:func:`convcalc.service.app.create_app` (imports FastAPI)."""
    from .app import create_app as create

    return create(*args, **kwargs)
