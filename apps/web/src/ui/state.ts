import type { DeviceState, VehicleState } from "../api/types";
import { formatDateTime, formatTime } from "../format";
import { h } from "./dom";

/**
 * The words and colours of the server's one state model (presence/state.py): every page that
 * shows a vehicle's or a device's state shows it with these, and with the time it began.
 */
export const VEHICLE_STATE_TEXT: Record<VehicleState, string> = {
  never_seen: "Never seen",
  live: "Live",
  stale: "Stale",
  offline: "Offline",
};

export const DEVICE_STATE_TEXT: Record<DeviceState, string> = {
  connected: "Connected",
  adapter_disconnected: "Adapter disconnected",
  engine_off: "Engine off",
  silent: "Silent",
  revoked: "Revoked",
};

const TONE: Record<VehicleState | DeviceState, string> = {
  live: "badge-ok",
  connected: "badge-ok",
  stale: "badge-warn",
  engine_off: "badge-warn",
  adapter_disconnected: "badge-warn",
  offline: "badge-muted",
  never_seen: "badge-muted",
  silent: "badge-muted",
  revoked: "badge-danger",
};

/** "since 14:03:12" today, "since 7 Dec 2026, 09:12:40" before. */
export function sinceText(iso: string | null, now = Date.now()): string {
  if (!iso) return "";
  const at = Date.parse(iso);
  const sameDay = new Date(at).toDateString() === new Date(now).toDateString();
  return `since ${sameDay ? formatTime(at) : formatDateTime(at)}`;
}

function badge(state: VehicleState | DeviceState, text: string, since: string | null, detail: string): HTMLElement {
  const when = since ? sinceText(since) : detail;
  return h(
    "span",
    { class: "state", "data-state": state },
    h("span", { class: `badge state-badge ${TONE[state]}` }, h("span", { class: "dot", "aria-hidden": "true" }), text),
    when ? h("time", { class: "muted state-since", datetime: since ?? "" }, when) : null,
  );
}

/** The vehicle's state badge and when it began ("No data yet" for a car never heard from). */
export function vehicleStateBadge(vehicle: { state: VehicleState; state_since: string | null }): HTMLElement {
  const never = vehicle.state === "never_seen";
  return badge(
    vehicle.state,
    VEHICLE_STATE_TEXT[vehicle.state],
    never ? null : vehicle.state_since,
    never ? "No data yet" : "",
  );
}

export function deviceStateBadge(device: { state: DeviceState; state_since: string | null }): HTMLElement {
  return badge(device.state, DEVICE_STATE_TEXT[device.state], device.state_since, "");
}
