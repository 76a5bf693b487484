import { get, send } from "../api/client";
import type { Vehicle } from "../api/types";
import { h } from "../ui/dom";
import { errorBox, messageOf } from "../ui/notify";
import type { PageContext } from "../router";

export type VehicleTab = "live" | "history" | "devices" | "dtcs";

const dtcSupport = new Map<number, boolean>();

/** Whether the server has the trouble-code history (absent: 404), asked once per vehicle. */
async function hasDtcs(id: number, signal: AbortSignal): Promise<boolean> {
  const known = dtcSupport.get(id);
  if (known !== undefined) return known;
  const response = await send("GET", `/api/v1/vehicles/${id}/dtcs`, { signal, passStatuses: [404] });
  const supported = response.status !== 404;
  dtcSupport.set(id, supported);
  return supported;
}

export function vehicleId(ctx: PageContext): number | null {
  const raw = ctx.params["id"] ?? "";
  return /^[1-9][0-9]{0,15}$/.test(raw) ? Number(raw) : null;
}

export interface VehicleFrame {
  el: HTMLElement;
  /** Where the page's own content goes. */
  body: HTMLElement;
  /** Resolves to the vehicle; null when it does not exist or could not be loaded (shown). */
  vehicle: Promise<Vehicle | null>;
  /** Right side of the page header (connection state and such). */
  aside: HTMLElement;
}

export function vehicleFrame(ctx: PageContext, id: number | null, active: VehicleTab): VehicleFrame {
  const title = h("h1", { class: "vehicle-title" }, "Vehicle");
  const subtitle = h("p", { class: "muted vehicle-subtitle" }, "\u00a0");
  const aside = h("div", { class: "page-aside" });
  const tabs = h("nav", { class: "tabs", "aria-label": "Vehicle pages" });
  const body = h("div", { class: "vehicle-body" });
  const el = h(
    "section",
    { class: "page" },
    h("div", { class: "page-head" }, h("div", null, title, subtitle), aside),
    tabs,
    body,
  );

  const paintTabs = (withDtcs: boolean): void => {
    const base = `/vehicles/${id ?? 0}`;
    const entries: Array<[VehicleTab, string, string]> = [
      ["live", "Live", base],
      ["history", "History", `${base}/history`],
      ["devices", "Devices", `${base}/devices`],
    ];
    if (withDtcs || active === "dtcs") entries.push(["dtcs", "Trouble codes", `${base}/dtcs`]);
    tabs.replaceChildren(
      ...entries.map(([key, label, href]) =>
        h("a", { href, class: "tab", "aria-current": key === active ? "page" : null }, label),
      ),
    );
  };
  paintTabs(dtcSupport.get(id ?? 0) ?? false);

  const vehicle = (async (): Promise<Vehicle | null> => {
    if (id === null) {
      title.textContent = "Vehicle not found";
      body.replaceChildren(errorBox("There is no vehicle at this address."));
      return null;
    }
    try {
      const [found, withDtcs] = await Promise.all([
        get<Vehicle>(`/api/v1/vehicles/${id}`, { signal: ctx.signal }),
        hasDtcs(id, ctx.signal).catch(() => false),
      ]);
      title.textContent = found.name;
      subtitle.textContent = found.vin ? `VIN ${found.vin}` : "No VIN recorded";
      paintTabs(withDtcs);
      return found;
    } catch (error) {
      if (ctx.signal.aborted) return null;
      title.textContent = "Vehicle unavailable";
      body.replaceChildren(errorBox(messageOf(error)));
      return null;
    }
  })();

  return { el, body, vehicle, aside };
}
