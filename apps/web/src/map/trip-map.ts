import L from "leaflet";
import "leaflet/dist/leaflet.css";
import { get } from "../api/client";
import type { MapTiles } from "../api/types";
import { pidColour } from "../charts/palette";

let tiles: Promise<MapTiles> | null = null;

/** Where tiles come from (the operator's MAP_TILE_URL), asked once per page load. */
export function mapTiles(signal?: AbortSignal): Promise<MapTiles> {
  if (!tiles) {
    tiles = get<MapTiles>("/api/v1/map", signal ? { signal } : {});
    tiles.catch(() => {
      tiles = null;
    });
  }
  return tiles;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The provider's credit as Leaflet shows it: the operator's text, escaped; OpenStreetMap's
 * linked to its copyright page, as its tile policy asks. */
export function attributionHtml(config: MapTiles): string {
  const text = escapeHtml(config.attribution);
  const host = config.tile_url ? new URL(config.tile_url.replace("{s}", "a")).hostname : "";
  if (host === "openstreetmap.org" || host.endsWith(".openstreetmap.org")) {
    return `<a href="https://www.openstreetmap.org/copyright">${text}</a>`;
  }
  return text;
}

/** The trip's track as a line with its start and end marked, over the configured tiles. The
 * line is drawn whatever becomes of the tiles: with no network (or no MAP_TILE_URL) it stands
 * on a plain background. */
export function tripMap(host: HTMLElement, points: ReadonlyArray<[number, number, number]>, config: MapTiles): L.Map {
  const map = L.map(host, { attributionControl: true, scrollWheelZoom: false, zoomSnap: 0.25 });
  map.attributionControl.setPrefix(false);
  if (config.tile_url) {
    L.tileLayer(config.tile_url, { maxZoom: 19, attribution: attributionHtml(config) }).addTo(map);
  }
  const latLngs = points.map(([, lat, lon]) => L.latLng(lat, lon));
  const colour = pidColour("SPEED");
  const line = L.polyline(latLngs, { color: colour, weight: 4, opacity: 0.9, className: "trip-track" }).addTo(map);
  const first = latLngs[0];
  const last = latLngs[latLngs.length - 1];
  if (first) {
    L.circleMarker(first, {
      radius: 7,
      color: "#ffffff",
      weight: 2,
      fillColor: "#1a7f37",
      fillOpacity: 1,
      className: "trip-start",
    })
      .bindTooltip("Start")
      .addTo(map);
  }
  if (last && latLngs.length > 1) {
    L.circleMarker(last, {
      radius: 7,
      color: "#ffffff",
      weight: 2,
      fillColor: "#cf222e",
      fillOpacity: 1,
      className: "trip-end",
    })
      .bindTooltip("End")
      .addTo(map);
  }
  const bounds = line.getBounds();
  if (bounds.isValid()) map.fitBounds(bounds, { padding: [24, 24], maxZoom: 17 });
  else map.setView([0, 0], 1);
  return map;
}
