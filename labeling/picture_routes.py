"""HTTP routes for a stored image's thumbnail, preview and original, so the browser fetches each once and caches it.

`serve.py` mounts them beside Streamlit (`/pictures/thumb/<image_id>`, `/pictures/preview/<id>`,
`/pictures/original/<id>`). Pages put these URLs into the gallery and the viewer instead of sending the bytes on
every rerun. The routes answer only the Host names the app's WebSocket accepts (`server.allowedHosts`), so a
DNS-rebinding page cannot read the images; an image that cannot be shown comes as the placeholder, never an error.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from labeling.thumbnails import Picture, Pictures

log = logging.getLogger(__name__)

PREFIX = "/pictures"
KINDS = ("thumb", "preview", "original")
_CACHE_SECONDS = 3600  # an image's bytes change only when its file does; an hour keeps paging instant
_lock = threading.Lock()
_pictures: Pictures | None = None
_ROW_SQL = """
    SELECT i.id AS image_id, d.name AS dataset, i.status, i.location
    FROM images i JOIN datasets d ON d.id = i.dataset_id WHERE i.id = ?
"""


def serve(pictures: Pictures) -> None:
    """Answer picture requests with this process's picture reader (the app registers it on first use)."""
    global _pictures
    with _lock:
        _pictures = pictures


def url(kind: str, image_id: int, base_path: str = "") -> str:
    """The browser path of one picture; `base_path` is Streamlit's `server.baseUrlPath`."""
    base = "/" + base_path.strip("/") if base_path.strip("/") else ""
    return f"{base}{PREFIX}/{kind}/{int(image_id)}"


def host_allowed(host_header: str, allowed_hosts: Sequence[str]) -> bool:
    """Whether a Host header names one of `allowed_hosts` (Streamlit's rules: port ignored, `*.` wildcards)."""
    allowed = [str(name).lower() for name in allowed_hosts]
    if not allowed or "*" in allowed:
        return True
    host = host_header.lower()
    name = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return any(name == entry or (entry.startswith("*.") and name.endswith(entry[1:])) for entry in allowed)


def _read(pictures: Pictures, kind: str, image_id: int) -> Picture | None:
    frame = pictures.store.fetch_df(_ROW_SQL, [image_id])
    if frame.empty:
        return None
    row: dict[str, Any] = {str(key): value for key, value in frame.iloc[0].to_dict().items()}
    return {"thumb": pictures.thumbnail, "preview": pictures.preview, "original": pictures.original}[kind](row)


async def _picture(request: Request, allowed_hosts: Sequence[str]) -> Response:
    if not host_allowed(request.headers.get("host") or "", allowed_hosts):
        return Response("Host not allowed", status_code=403, media_type="text/plain")
    kind = request.path_params["kind"]
    pictures = _pictures
    if kind not in KINDS:
        return Response("Not found", status_code=404, media_type="text/plain")
    if pictures is None:  # no page has run in this process yet
        return Response("Open the app first", status_code=503, media_type="text/plain")
    try:
        picture = await run_in_threadpool(_read, pictures, kind, int(request.path_params["image_id"]))
    except Exception:  # one bad image must not become a server error page; the log keeps the detail
        log.warning("Serving %s of image %s failed", kind, request.path_params["image_id"], exc_info=True)
        return Response("Cannot read this image", status_code=500, media_type="text/plain")
    if picture is None:
        return Response("No such image", status_code=404, media_type="text/plain")
    headers = {
        "Cache-Control": "no-cache" if picture.placeholder else f"private, max-age={_CACHE_SECONDS}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'",
    }
    return Response(picture.data, media_type=picture.mime_type, headers=headers)


def routes(allowed_hosts: Callable[[], Sequence[str]]) -> list[Route]:
    """The picture routes; `allowed_hosts` reads the server's `server.allowedHosts` at request time."""

    async def picture(request: Request) -> Response:
        return await _picture(request, allowed_hosts() or ())

    return [Route(PREFIX + "/{kind}/{image_id:int}", picture, methods=["GET"])]
