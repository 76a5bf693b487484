"""The web UI's build (apps/web/dist) served by the API: files, and index.html for client routes.

Production puts nginx in front with the same rules; this keeps the embedded default (and
`demo`) a single process with nothing else to install.
"""

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, Response
from starlette.routing import Match, Route
from starlette.types import Scope

from obd2_dashboard.maps.tiles import DEFAULT_MAP_TILE_URL, tile_image_source
from obd2_dashboard.settings import Settings

log = logging.getLogger("obd2_dashboard.web")

# Paths the API owns: an unknown one there is the API's 404, never the web app.
RESERVED = frozenset({"api", "healthz", "readyz", "metrics"})
ASSETS_DIR = "assets"

IMMUTABLE = "public, max-age=31536000, immutable"


def content_security_policy(tile_url: str) -> str:
    """The page may load only what it was built with (no other origin, no inline script), and
    images from the map tile server MAP_TILE_URL names, when it names one."""
    tiles = tile_image_source(tile_url)
    images = f"'self' data: {tiles}" if tiles else "'self' data:"
    return (
        f"default-src 'self'; script-src 'self'; style-src 'self'; img-src {images}; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


# With the default tiles (OpenStreetMap's): what infra/nginx's site file sends.
CONTENT_SECURITY_POLICY = content_security_policy(DEFAULT_MAP_TILE_URL)


def index_headers(settings: Settings) -> dict[str, str]:
    return {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": content_security_policy(settings.MAP_TILE_URL),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }


# apps/web of the source tree this package runs from (uv installs the workspace editable).
REPO_WEB = Path(__file__).resolve().parents[4] / "web"


def repo_web_dist() -> Path | None:
    """The source tree's apps/web/dist, when this runs from a source tree and it has been built."""
    dist = REPO_WEB / "dist"
    if (REPO_WEB / "package.json").is_file() and (dist / "index.html").is_file():
        return dist
    return None


def web_dist(settings: Settings) -> Path | None:
    return settings.WEB_DIST if settings.WEB_DIST is not None else repo_web_dist()


def _reserved(path: str) -> bool:
    return path.lstrip("/").split("/", 1)[0] in RESERVED


class WebRoute(Route):
    """A catch-all that steps aside for the API's paths, so their 404s and 405s stay theirs."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and _reserved(scope["path"]):
            return Match.NONE, {}
        return super().matches(scope)


def _looks_like_file(path: str) -> bool:
    last = path.rsplit("/", 1)[-1]
    return path.startswith(f"{ASSETS_DIR}/") or "." in last


def web_endpoint(dist: Path, headers: dict[str, str]) -> Any:
    root = dist.resolve()
    index = root / "index.html"

    async def serve(request: Request) -> Response:
        path: str = request.path_params["path"]
        if path:
            candidate = (root / path).resolve()
            if candidate.is_relative_to(root) and candidate.is_file():
                cache = IMMUTABLE if path.startswith(f"{ASSETS_DIR}/") else "no-cache"
                return FileResponse(
                    candidate,
                    headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"},
                )
            if _looks_like_file(path):
                # An old hashed asset or a typo: a 404, not the app's HTML under a script's name.
                raise HTTPException(404, "not found")
        if not index.is_file():
            raise HTTPException(404, "the web UI is not built: run `make web`")
        return FileResponse(index, media_type="text/html", headers=headers)

    return serve


def install_web(app: FastAPI, settings: Settings) -> None:
    """Serves the web UI's build at every path the API does not own, when there is one."""
    dist = web_dist(settings)
    if dist is None:
        return
    if not (dist / "index.html").is_file():
        log.warning(
            "WEB_DIST has no index.html; the web UI is not served", extra={"dist": str(dist)}
        )
    app.router.routes.append(
        WebRoute(
            "/{path:path}",
            web_endpoint(dist, index_headers(settings)),
            methods=["GET", "HEAD"],
            include_in_schema=False,
        )
    )
