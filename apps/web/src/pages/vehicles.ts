import { ApiError, SignedOutError, api, get } from "../api/client";
import type { Vehicle } from "../api/types";
import { formatAgo } from "../format";
import { confirmDialog, promptDialog } from "../ui/dialog";
import { h, uid } from "../ui/dom";
import { icon } from "../ui/icons";
import { act, errorBox, messageOf, toast } from "../ui/notify";
import type { Page, PageContext } from "../router";
import { invitationsPanel } from "./invitations";
import { openAlertsBadge, sharedBadge, vinSummary } from "./vehicle-frame";
import { vehicleWeeks } from "./vehicle-week";
import { vehicleStateBadge } from "../ui/state";

const REFRESH_MS = 10_000;
// ISO 3779, as the server checks it.
const VIN = /^[A-HJ-NPR-Z0-9]{17}$/;

export function vehiclesPage(ctx: PageContext): Page {
  const list = h("ul", { class: "vehicle-list", "aria-busy": "true" });
  const status = h("div", { "aria-live": "polite" });
  let vehicles: Vehicle[] = [];
  const week = vehicleWeeks(ctx.signal);

  const load = async (): Promise<void> => {
    vehicles = await get<Vehicle[]>("/api/v1/vehicles", { signal: ctx.signal });
    status.replaceChildren();
    paint();
  };
  const refresh = (): void => {
    load().catch((error: unknown) => {
      if (ctx.signal.aborted || error instanceof SignedOutError) return;
      list.removeAttribute("aria-busy");
      status.replaceChildren(errorBox(messageOf(error)));
    });
  };

  const rename = async (vehicle: Vehicle): Promise<void> => {
    const name = await promptDialog({
      title: `Rename ${vehicle.name}`,
      label: "New name",
      value: vehicle.name,
      confirm: "Rename",
    });
    if (name === null || name === vehicle.name) return;
    await api<Vehicle>("PATCH", `/api/v1/vehicles/${vehicle.id}`, { body: { name } });
    toast(`Renamed to ${name}.`, "success");
    await load();
  };

  const remove = async (vehicle: Vehicle): Promise<void> => {
    const sure = await confirmDialog({
      title: `Delete ${vehicle.name}?`,
      body: [
        "This deletes the vehicle, its devices and every sample recorded for it.",
        "Its devices stop being able to upload. This cannot be undone.",
      ],
      confirm: "Delete vehicle",
      danger: true,
    });
    if (!sure) return;
    await api<undefined>("DELETE", `/api/v1/vehicles/${vehicle.id}`);
    toast(`${vehicle.name} was deleted.`, "success");
    await load();
  };

  const card = (vehicle: Vehicle): HTMLElement => {
    const base = `/vehicles/${vehicle.id}`;
    const renameButton = h(
      "button",
      { type: "button", class: "button small ghost", "aria-label": `Rename ${vehicle.name}` },
      "Rename",
    );
    renameButton.addEventListener(
      "click",
      act(() => rename(vehicle)),
    );
    const deleteButton = h(
      "button",
      { type: "button", class: "button small ghost danger-text", "aria-label": `Delete ${vehicle.name}` },
      "Delete",
    );
    deleteButton.addEventListener(
      "click",
      act(() => remove(vehicle)),
    );
    const headingId = uid("vehicle");
    const viewer = vehicle.role === "viewer";
    const decoded = vinSummary(vehicle);
    return h(
      "li",
      { class: "card vehicle-card", "aria-labelledby": headingId },
      h(
        "div",
        { class: "vehicle-card-head" },
        icon("car", "icon vehicle-icon"),
        h(
          "div",
          { class: "vehicle-card-title" },
          h("h2", { id: headingId }, h("a", { href: base }, vehicle.name)),
          h("p", { class: "muted mono" }, vehicle.vin ?? "No VIN"),
          decoded ? h("p", { class: "muted vin-info" }, decoded) : null,
        ),
        h(
          "div",
          { class: "vehicle-badges" },
          viewer ? sharedBadge() : null,
          vehicleStateBadge(vehicle),
          openAlertsBadge(vehicle),
        ),
      ),
      h(
        "p",
        { class: "muted" },
        "Last data ",
        h("time", { datetime: vehicle.last_seen_at ?? "" }, formatAgo(vehicle.last_seen_at)),
      ),
      week(vehicle.id),
      h(
        "div",
        { class: "card-actions" },
        h("a", { class: "button primary small", href: base }, icon("gauge"), "Live"),
        h("a", { class: "button small", href: `${base}/history` }, icon("chart"), "History"),
        h("a", { class: "button small", href: `${base}/trips` }, icon("route"), "Trips"),
        viewer ? null : h("a", { class: "button small", href: `${base}/devices` }, icon("chip"), "Devices"),
      ),
      viewer ? null : h("div", { class: "card-secondary" }, renameButton, deleteButton),
    );
  };

  const paint = (): void => {
    list.removeAttribute("aria-busy");
    if (vehicles.length === 0) {
      list.replaceChildren(
        h(
          "li",
          { class: "card empty" },
          h("h2", null, "No vehicles yet"),
          h("p", null, "Add your first vehicle below, then create a device for its Bridge Agent."),
        ),
      );
      return;
    }
    list.replaceChildren(...vehicles.map(card));
  };

  // Add a vehicle.
  const nameInput = h("input", {
    id: "new-vehicle-name",
    name: "name",
    required: true,
    maxlength: 100,
    autocomplete: "off",
  });
  const vinInput = h("input", {
    id: "new-vehicle-vin",
    name: "vin",
    maxlength: 17,
    autocomplete: "off",
    spellcheck: "false",
    class: "mono",
    "aria-describedby": "new-vehicle-vin-hint",
  });
  const formMessage = h("div", { class: "form-message" });
  const addForm = h(
    "form",
    { class: "card add-form", novalidate: true, "aria-labelledby": "add-vehicle-title" },
    h("h2", { id: "add-vehicle-title" }, "Add a vehicle"),
    formMessage,
    h(
      "div",
      { class: "form-row" },
      h("div", { class: "field" }, h("label", { for: "new-vehicle-name" }, "Name"), nameInput),
      h(
        "div",
        { class: "field" },
        h("label", { for: "new-vehicle-vin" }, "VIN (optional)"),
        vinInput,
        h(
          "p",
          { id: "new-vehicle-vin-hint", class: "hint" },
          "17 characters; the agent can also read it from the car.",
        ),
      ),
      h(
        "div",
        { class: "field field-submit" },
        h("button", { type: "submit", class: "button primary" }, icon("plus"), "Add vehicle"),
      ),
    ),
  );
  addForm.addEventListener(
    "submit",
    act(async (event) => {
      event.preventDefault();
      formMessage.replaceChildren();
      const name = nameInput.value.trim();
      const vin = vinInput.value.trim().toUpperCase();
      if (!name) {
        formMessage.replaceChildren(errorBox("Give the vehicle a name."));
        nameInput.focus();
        return;
      }
      if (vin && !VIN.test(vin)) {
        formMessage.replaceChildren(errorBox("A VIN has 17 characters: digits and capital letters except I, O and Q."));
        vinInput.focus();
        return;
      }
      try {
        const created = await api<Vehicle>("POST", "/api/v1/vehicles", {
          body: vin ? { name, vin } : { name },
        });
        nameInput.value = "";
        vinInput.value = "";
        toast(`${created.name} was added.`, "success");
        await load();
      } catch (error) {
        if (!(error instanceof ApiError) || error.status === 401) throw error;
        formMessage.replaceChildren(errorBox(messageOf(error)));
        (error.fields[0]?.field === "vin" ? vinInput : nameInput).focus();
      }
    }),
  );

  const invitations = invitationsPanel(ctx, load);
  const refreshAll = (): void => {
    refresh();
    invitations.refresh();
  };
  refreshAll();
  const timer = window.setInterval(refreshAll, REFRESH_MS);

  return {
    title: "Vehicles",
    el: h(
      "section",
      { class: "page" },
      h("div", { class: "page-head" }, h("h1", null, "Vehicles")),
      status,
      invitations.el,
      list,
      addForm,
    ),
    dispose: () => {
      window.clearInterval(timer);
    },
  };
}
