"""The map tiles under a trip's track: the operator's tile URL template, checked, and the origin
the web UI's Content-Security-Policy must let images come from."""

from urllib.parse import urlsplit

DEFAULT_MAP_TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
DEFAULT_MAP_TILE_ATTRIBUTION = "© OpenStreetMap contributors"


class TileUrlError(ValueError):
    pass


def check_tile_url(template: str) -> None:
    """Raises TileUrlError unless ``template`` is empty (no tiles) or an http(s) URL with the
    {z}, {x} and {y} placeholders Leaflet fills."""
    template = template.strip()
    if not template:
        return
    parts = urlsplit(template.replace("{s}", "a"))
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise TileUrlError(f"{template!r} is not an http(s) URL")
    missing = [p for p in ("{z}", "{x}", "{y}") if p not in template]
    if missing:
        raise TileUrlError(f"{template!r} lacks {', '.join(missing)}")
    if any(c in template for c in " ;'\"\n\r"):
        # It goes into a Content-Security-Policy header: nothing that could end a directive.
        raise TileUrlError(f"{template!r} holds a space, quote or semicolon")


def tile_image_source(template: str) -> str | None:
    """The CSP source that admits the template's tiles ("https://tile.openstreetmap.org";
    "https://*.tile.example.org" for a {s} subdomain template); None without tiles."""
    template = template.strip()
    if not template:
        return None
    parts = urlsplit(template)
    host = parts.netloc.replace("{s}", "*")
    return f"{parts.scheme}://{host}"
