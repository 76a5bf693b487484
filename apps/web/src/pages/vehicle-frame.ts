import { ApiError, get } from "../api/client";
import type { Vehicle, VehiclePid } from "../api/types";
import { loadVehiclePids } from "../pids";
import { h } from "../ui/dom";
import { errorBox, messageOf } from "../ui/notify";
import { vehicleStateBadge } from "../ui/state";
import type { PageContext } from "../router";

export type VehicleTab = "live" | "history" | "trips" | "alerts" | "devices" | "dtcs" | "sharing" | "import";

/** Owners see every tab; a viewer (shared read-only) none that only change things. */
const roles = new Map<number, "owner" | "viewer">();

/** "Volkswagen · 2010 · Europe" from the decoded VIN, or "" when nothing was decoded. */
export function vinSummary(vehicle: Vehicle): string {
  const info = vehicle.vin_info;
  if (!info) return "";
  return [info.maker, info.model_year, info.region].filter((part) => part !== null && part !== "").join(" · ");
}

export function sharedBadge(): HTMLElement {
  return h(
    "span",
    { class: "badge badge-warn shared-badge", title: "Read-only: shared with you by its owner" },
    "Shared with you",
  );
}

/** "2 open alerts", a link to the vehicle's alerts; null when none is open. */
export function openAlertsBadge(vehicle: Vehicle): HTMLElement | null {
  const open = vehicle.open_alerts ?? 0;
  if (open <= 0) return null;
  const text = open === 1 ? "1 open alert" : `${open} open alerts`;
  return h(
    "a",
    {
      class: "badge badge-danger open-alerts",
      href: `/vehicles/${vehicle.id}/alerts`,
      title: "Fired and not cleared yet: see Alerts",
    },
    text,
  );
}

export function vehicleId(ctx: PageContext): number | null {
  const raw = ctx.params["id"] ?? "";
  return /^[1-9][0-9]{0,15}$/.test(raw) ? Number(raw) : null;
}

export interface VehicleFrame {
  el: HTMLElement;
  /** Where the page's own content goes. */
  body: HTMLElement;
  /** Resolves to the vehicle; null when it does not exist or could not be loaded (shown).
   * The vehicle's PIDs are known to ../pids by then (labels and units). */
  vehicle: Promise<Vehicle | null>;
  /** The PIDs the vehicle has sent; empty when they could not be loaded. */
  pids: Promise<VehiclePid[]>;
  /** Right side of the page header (connection state and such). */
  aside: HTMLElement;
  /** Calls back with the vehicle each time it is read again (its state, every few seconds). */
  onVehicle: (listener: (vehicle: Vehicle) => void) => void;
  /** Reads the vehicle again now (e.g. when a sample shows it may have become live). */
  refreshVehicle: () => void;
}

/** How often a vehicle page reads the vehicle again, for the state in its header. */
const STATE_REFRESH_MS = 5_000;

export function vehicleFrame(ctx: PageContext, id: number | null, active: VehicleTab): VehicleFrame {
  const title = h("h1", { class: "vehicle-title" }, "Vehicle");
  const subtitle = h("p", { class: "muted vehicle-subtitle" }, "\u00a0");
  // The vehicle's state as the server computes it, the same on every page (ui/state.ts).
  const stateHost = h("div", { class: "vehicle-state", role: "status", "aria-live": "polite" });
  const aside = h("div", { class: "page-aside" }, stateHost);
  const tabs = h("nav", { class: "tabs", "aria-label": "Vehicle pages" });
  const body = h("div", { class: "vehicle-body" });
  const el = h(
    "section",
    { class: "page" },
    h("div", { class: "page-head" }, h("div", null, title, subtitle), aside),
    tabs,
    body,
  );

  const listeners: Array<(vehicle: Vehicle) => void> = [];
  let latest: Vehicle | null = null;
  const showState = (found: Vehicle): void => {
    latest = found;
    const shown = stateHost.firstElementChild as HTMLElement | null;
    // Repainted only when it changed: a screen reader hears the change, not every refresh.
    if (shown?.dataset["state"] !== found.state || shown.dataset["since"] !== found.state_since) {
      const badge = vehicleStateBadge(found);
      badge.dataset["since"] = found.state_since ?? "";
      stateHost.replaceChildren(badge);
    }
    for (const listener of listeners) listener(found);
  };

  const paintTabs = (role: "owner" | "viewer"): void => {
    const base = `/vehicles/${id ?? 0}`;
    const entries: Array<[VehicleTab, string, string]> = [
      ["live", "Live", base],
      ["history", "History", `${base}/history`],
      ["trips", "Trips", `${base}/trips`],
      ["alerts", "Alerts", `${base}/alerts`],
      ["dtcs", "Trouble codes", `${base}/dtcs`],
    ];
    if (role === "owner" || active === "devices") entries.push(["devices", "Devices", `${base}/devices`]);
    if (role === "owner" || active === "sharing") entries.push(["sharing", "Sharing", `${base}/sharing`]);
    if (role === "owner" || active === "import") entries.push(["import", "Import", `${base}/import`]);
    tabs.replaceChildren(
      ...entries.map(([key, label, href]) =>
        h("a", { href, class: "tab", "aria-current": key === active ? "page" : null }, label),
      ),
    );
    // On a phone the strip scrolls sideways: bring the page's own tab into view, centred.
    requestAnimationFrame(() => {
      const current = tabs.querySelector<HTMLElement>('[aria-current="page"]');
      if (!current || tabs.scrollWidth <= tabs.clientWidth) return;
      const strip = tabs.getBoundingClientRect();
      const tab = current.getBoundingClientRect();
      tabs.scrollLeft += tab.left + tab.width / 2 - (strip.left + strip.width / 2);
    });
  };
  paintTabs(roles.get(id ?? 0) ?? "owner");

  // Labels and units are no reason to fail a page: without them, PIDs show their names.
  const pids: Promise<VehiclePid[]> =
    id === null ? Promise.resolve([]) : loadVehiclePids(id, ctx.signal).catch(() => []);

  // No vehicle to show: no tabs to its pages, no connection state, one way back.
  const unavailable = (heading: string, message: string): null => {
    title.textContent = heading;
    subtitle.textContent = "\u00a0";
    tabs.remove();
    aside.replaceChildren();
    body.replaceChildren(
      errorBox(message),
      h("p", null, h("a", { class: "button", href: "/vehicles" }, "All vehicles")),
    );
    return null;
  };

  const vehicle = (async (): Promise<Vehicle | null> => {
    if (id === null) return unavailable("Vehicle not found", "There is no vehicle at this address.");
    try {
      const found = await get<Vehicle>(`/api/v1/vehicles/${id}`, { signal: ctx.signal });
      showState(found);
      const role = found.role ?? "owner";
      roles.set(id, role);
      title.replaceChildren(found.name, role === "viewer" ? sharedBadge() : "", openAlertsBadge(found) ?? "");
      const decoded = vinSummary(found);
      subtitle.textContent = found.vin ? `VIN ${found.vin}${decoded ? ` · ${decoded}` : ""}` : "No VIN recorded";
      paintTabs(role);
      await pids;
      return found;
    } catch (error) {
      if (ctx.signal.aborted) return null;
      if (error instanceof ApiError && error.status === 404) {
        return unavailable("Vehicle not found", "There is no vehicle at this address, or it is not shared with you.");
      }
      return unavailable("Vehicle unavailable", messageOf(error));
    }
  })();

  const refreshVehicle = (): void => {
    if (id === null || ctx.signal.aborted) return;
    get<Vehicle>(`/api/v1/vehicles/${id}`, { signal: ctx.signal })
      .then(showState)
      .catch(() => undefined); // the next refresh tries again; the page shows its own errors
  };
  vehicle
    .then((found) => {
      if (!found || ctx.signal.aborted) return;
      const timer = window.setInterval(refreshVehicle, STATE_REFRESH_MS);
      ctx.signal.addEventListener("abort", () => {
        window.clearInterval(timer);
      });
    })
    .catch(() => undefined);

  return {
    el,
    body,
    vehicle,
    pids,
    aside,
    onVehicle: (listener) => {
      listeners.push(listener);
      if (latest) listener(latest);
    },
    refreshVehicle,
  };
}
