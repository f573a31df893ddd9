"""The query side of every SOL013 collection: filter, page, then select attributes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from sol013.filters import parse_filter
from sol013.paging import paginate
from sol013.selectors import Selector, apply_selector

T = TypeVar("T")
R_co = TypeVar("R_co", covariant=True)


def base_url(request: Request) -> str:
    """FastAPI dependency: the service's base URL as the client reached it, for links."""
    return str(request.base_url).rstrip("/")


def list_response(
    request: Request,
    items: Sequence[tuple[T, dict[str, Any]]],
    *,
    key: Callable[[T], str],
    filter_expr: str | None,
    model: type[BaseModel],
    marker: str | None,
    page_size: int,
    selector: Selector | None = None,
    default_excluded: Sequence[str] = (),
) -> JSONResponse:
    """A collection GET: `items` are (row, representation) pairs already sorted by `key`.

    Filters apply to the full representation, then the page is cut, then the
    attribute selector trims what is sent; the Link header points to the next page.
    """
    flt = parse_filter(filter_expr, model=model) if filter_expr is not None else None
    matching = [pair for pair in items if flt is None or flt.matches(pair[1])]
    page, link = paginate(
        matching,
        key=lambda pair: key(pair[0]),
        marker=marker,
        page_size=page_size,
        request_url=str(request.url),
    )
    views = [view for _, view in page]
    if selector is not None:
        views = [
            apply_selector(view, selector, default_excluded=default_excluded) for view in views
        ]
    return JSONResponse(views, headers={"Link": link} if link else None)


def created_order_key(row: Any) -> str:
    """Paging key of rows ordered by creation time, then id."""
    return f"{row.created_at.isoformat()}|{row.id}"


class Listable(Protocol[R_co]):
    """A service whose rows make a collection resource."""

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    def list_all(self, session: Session) -> Sequence[R_co]: ...


def list_rows(
    request: Request,
    source: Listable[T],
    view: Callable[[T], dict[str, Any]],
    *,
    filter_expr: str | None,
    model: type[BaseModel],
    marker: str | None,
    page_size: int,
    selector: Selector | None = None,
    default_excluded: Sequence[str] = (),
) -> JSONResponse:
    """A collection GET of every row ``source`` lists, in creation order, shown by ``view``.

    The rows are read in one session; see `list_response` for the rest.
    """
    with source.sessions() as session:
        rows = source.list_all(session)
    return list_response(
        request,
        [(row, view(row)) for row in rows],
        key=created_order_key,
        filter_expr=filter_expr,
        model=model,
        marker=marker,
        page_size=page_size,
        selector=selector,
        default_excluded=default_excluded,
    )
