import { ApiError, api, get } from "../api/client";
import type { Device, DeviceCreated, DeviceStatus } from "../api/types";
import { formatAgo, formatDateTime } from "../format";
import { confirmDialog } from "../ui/dialog";
import { h, uid } from "../ui/dom";
import { deviceStateBadge } from "../ui/state";
import { icon } from "../ui/icons";
import { act, errorBox, messageOf, report, toast } from "../ui/notify";
import type { Page, PageContext } from "../router";
import { bridgeCommand } from "./bridge-command";
import { vehicleFrame, vehicleId } from "./vehicle-frame";

const REFRESH_MS = 10_000;
const DEFAULT_ADAPTER = "/dev/ttyUSB0";

const ADAPTER_TEXT: Readonly<Record<string, string>> = {
  connecting: "Connecting to the adapter",
  no_adapter: "No adapter found",
  no_ecu: "Adapter found, car not answering",
  unsupported_protocol: "Protocol not supported",
  timeout: "Adapter timed out",
  connected: "Connected",
  engine_off: "Engine off",
  low_voltage: "Paused: low battery voltage",
};

async function copy(text: string, what: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    toast(`${what} copied.`, "success");
  } catch {
    toast(`Copying is not allowed here: select the ${what.toLowerCase()} and copy it by hand.`, "error");
  }
}

/** The agent's newest report; what it says of this moment (adapter, rate) only while the
 * device is heard from: a silent device's report is history, and its state says so. */
function statusRows(status: DeviceStatus | null, current: boolean): HTMLElement[] {
  if (!status) return [h("div", null, h("dt", null, "Agent report"), h("dd", null, "none yet"))];
  const rows: Array<[string, string]> = [];
  if (status.adapter_state && current) {
    const text = ADAPTER_TEXT[status.adapter_state] ?? status.adapter_state;
    const detail = status.adapter_detail && status.adapter_detail !== status.protocol ? status.adapter_detail : "";
    rows.push(["Adapter", detail ? `${text} (${detail})` : text]);
  }
  if (status.protocol) rows.push(["Protocol", status.protocol]);
  if (status.vin) rows.push(["VIN read", status.vin]);
  if (typeof status.battery_voltage === "number") rows.push(["Battery", `${status.battery_voltage.toFixed(1)} V`]);
  if (typeof status.spool_backlog === "number")
    rows.push(["Spool backlog", `${status.spool_backlog.toLocaleString()} samples`]);
  if (status.spool_dropped) rows.push(["Dropped (spool full)", status.spool_dropped.toLocaleString()]);
  if (typeof status.sample_rate === "number" && current)
    rows.push(["Sample rate", `${status.sample_rate.toFixed(1)} /s`]);
  if (typeof status.last_upload_ts === "number")
    rows.push(["Last upload", formatAgo(new Date(status.last_upload_ts).toISOString())]);
  return rows.map(([k, v]) =>
    h("div", null, h("dt", null, k), h("dd", { class: k === "VIN read" ? "mono" : null }, v)),
  );
}

export function devicesPage(ctx: PageContext): Page {
  const id = vehicleId(ctx);
  const frame = vehicleFrame(ctx, id, "devices");
  const list = h("div", { class: "device-list", "aria-busy": "true" });
  const listStatus = h("div");
  const reveal = h("div", { class: "token-reveal-host" });
  let devices: Device[] = [];

  const load = async (): Promise<void> => {
    if (id === null) return;
    devices = await get<Device[]>(`/api/v1/vehicles/${id}/devices`, { signal: ctx.signal });
    listStatus.replaceChildren();
    paint();
  };

  const refresh = (): void => {
    load().catch((error: unknown) => {
      if (ctx.signal.aborted) return;
      if (error instanceof ApiError && error.status === 401) return;
      listStatus.replaceChildren(errorBox(messageOf(error)));
    });
  };

  const revoke = async (device: Device): Promise<void> => {
    const sure = await confirmDialog({
      title: `Revoke ${device.name}?`,
      body: [
        "Its token stops working at once: the agent using it can no longer upload.",
        "Samples it already sent are kept. To connect it again, create a new device and give the agent the new token.",
      ],
      confirm: "Revoke token",
      danger: true,
    });
    if (!sure) return;
    await api<Device>("POST", `/api/v1/devices/${device.id}/revoke`);
    toast(`${device.name} was revoked.`, "success");
    await load();
  };

  const row = (device: Device): HTMLElement => {
    const revoked = device.revoked_at !== null;
    const titleId = uid("device");
    const actions = h("div", { class: "card-actions" });
    if (!revoked) {
      const button = h("button", { type: "button", class: "button small danger-outline" }, "Revoke");
      button.addEventListener(
        "click",
        act(() => revoke(device)),
      );
      actions.append(button);
    }
    const seen = device.last_seen_at;
    return h(
      "article",
      { class: `card device-card${revoked ? " revoked" : ""}`, "aria-labelledby": titleId },
      h(
        "div",
        { class: "vehicle-card-head" },
        icon("chip", "icon vehicle-icon"),
        h(
          "div",
          { class: "vehicle-card-title" },
          h("h3", { id: titleId }, device.name),
          h("p", { class: "muted mono" }, `token ${device.token_prefix}…`),
        ),
        deviceStateBadge(device),
      ),
      h(
        "dl",
        { class: "facts" },
        h("div", null, h("dt", null, "Last seen"), h("dd", null, formatAgo(seen))),
        h("div", null, h("dt", null, "Agent version"), h("dd", null, device.agent_version ?? "unknown")),
        h("div", null, h("dt", null, "Created"), h("dd", null, formatDateTime(device.created_at))),
        revoked
          ? h("div", null, h("dt", null, "Revoked"), h("dd", null, formatDateTime(device.revoked_at ?? "")))
          : null,
        revoked ? null : statusRows(device.status, device.state !== "silent"),
      ),
      actions,
    );
  };

  const paint = (): void => {
    list.removeAttribute("aria-busy");
    if (devices.length === 0) {
      list.replaceChildren(
        h(
          "div",
          { class: "card empty" },
          h("h3", null, "No devices yet"),
          h("p", null, "Create one below and give its token to the Bridge Agent in the car."),
        ),
      );
      return;
    }
    const active = devices.filter((d) => d.revoked_at === null);
    const revoked = devices.filter((d) => d.revoked_at !== null);
    list.replaceChildren(...active.map(row), ...revoked.map(row));
  };

  const showToken = (created: DeviceCreated): void => {
    const adapterId = uid("adapter");
    const tokenId = uid("token");
    const commandId = uid("command");
    // The address the agent in the car uploads to: the operator's PUBLIC_URL; without it, the
    // one this browser used, which may be a LAN or loopback address the car cannot reach.
    const apiUrl = created.api_url ?? location.origin;
    const addressWarning = created.api_url
      ? null
      : h(
          "p",
          { class: "notice", role: "note" },
          icon("warning"),
          `The server's PUBLIC_URL is not set, so this command uses the address this browser used (${location.origin}). `,
          "If the car cannot reach that address, put the server's public address after --api, and ask the operator to set PUBLIC_URL.",
        );
    const adapter = h("input", {
      id: adapterId,
      value: DEFAULT_ADAPTER,
      class: "mono",
      autocomplete: "off",
      spellcheck: "false",
      "aria-describedby": `${adapterId}-hint`,
    });
    const token = h("input", { id: tokenId, value: created.token, readonly: true, class: "mono", spellcheck: "false" });
    const command = h(
      "pre",
      { id: commandId, class: "command mono", tabindex: "0", "aria-label": "Command to start the agent" },
      bridgeCommand(DEFAULT_ADAPTER, apiUrl, created.token),
    );
    adapter.addEventListener("input", () => {
      command.textContent = bridgeCommand(adapter.value.trim() || DEFAULT_ADAPTER, apiUrl, created.token);
    });
    const copyToken = h("button", { type: "button", class: "button small" }, icon("copy"), "Copy token");
    copyToken.addEventListener(
      "click",
      act(() => copy(created.token, "Token")),
    );
    const copyCommand = h("button", { type: "button", class: "button small" }, icon("copy"), "Copy command");
    copyCommand.addEventListener(
      "click",
      act(() => copy(command.textContent, "Command")),
    );
    const done = h("button", { type: "button", class: "button primary" }, "I have saved the token");
    const titleId = uid("reveal");
    const panel = h(
      "section",
      { class: "card token-reveal", "aria-labelledby": titleId, tabindex: "-1" },
      h("h3", { id: titleId }, `Token for ${created.name}`),
      h(
        "p",
        { class: "notice" },
        icon("warning"),
        "This token is shown only this once; only a hash of it is stored. Copy it now.",
      ),
      h(
        "div",
        { class: "field" },
        h("label", { for: tokenId }, "Device token"),
        h("div", { class: "input-with-button" }, token, copyToken),
      ),
      h(
        "div",
        { class: "field" },
        h("label", { for: adapterId }, "Adapter port in the car"),
        adapter,
        h(
          "p",
          { id: `${adapterId}-hint`, class: "hint" },
          "A serial device such as /dev/ttyUSB0 or /dev/rfcomm0, or socket://host:port for a Wi-Fi adapter.",
        ),
      ),
      h(
        "div",
        { class: "field" },
        h("span", { class: "label" }, "Start the agent with"),
        command,
        addressWarning,
        h("div", { class: "card-actions" }, copyCommand),
      ),
      h("div", { class: "card-actions" }, done),
    );
    done.addEventListener("click", () => {
      reveal.replaceChildren();
      nameInput.focus();
    });
    reveal.replaceChildren(panel);
    panel.focus();
  };

  const nameId = uid("device-name");
  const nameInput = h("input", {
    id: nameId,
    name: "name",
    required: true,
    maxlength: 100,
    autocomplete: "off",
    placeholder: "Raspberry Pi in the glovebox",
  });
  const formMessage = h("div", { class: "form-message" });
  const form = h(
    "form",
    { class: "card add-form", novalidate: true, "aria-labelledby": "add-device-title" },
    h("h2", { id: "add-device-title" }, "Create a device"),
    h("p", { class: "muted" }, "A device is one Bridge Agent; it gets its own token to upload this vehicle's data."),
    formMessage,
    h(
      "div",
      { class: "form-row" },
      h("div", { class: "field" }, h("label", { for: nameId }, "Device name"), nameInput),
      h(
        "div",
        { class: "field field-submit" },
        h("button", { type: "submit", class: "button primary" }, icon("plus"), "Create device"),
      ),
    ),
  );
  form.addEventListener(
    "submit",
    act(async (event) => {
      event.preventDefault();
      formMessage.replaceChildren();
      const name = nameInput.value.trim();
      if (!name) {
        formMessage.replaceChildren(errorBox("Give the device a name."));
        nameInput.focus();
        return;
      }
      if (id === null) return;
      try {
        const created = await api<DeviceCreated>("POST", `/api/v1/vehicles/${id}/devices`, { body: { name } });
        nameInput.value = "";
        showToken(created);
        await load();
      } catch (error) {
        if (!(error instanceof ApiError) || error.status === 401) throw error;
        formMessage.replaceChildren(errorBox(messageOf(error)));
      }
    }),
  );

  frame.body.append(h("h2", { class: "section-title" }, "Devices"), listStatus, list, reveal, form);
  const timer = window.setInterval(refresh, REFRESH_MS);
  frame.vehicle
    .then((vehicle) => {
      if (!vehicle) return;
      if (vehicle.role === "viewer") {
        // Shared read-only: devices are the owner's to see and to make.
        list.removeAttribute("aria-busy");
        form.remove();
        list.replaceChildren(
          h(
            "div",
            { class: "card empty" },
            h("h3", null, "Only the owner manages devices"),
            h(
              "p",
              null,
              "This vehicle is shared with you read-only: its owner creates and revokes the devices that upload its data.",
            ),
          ),
        );
        window.clearInterval(timer);
        return;
      }
      refresh();
    })
    .catch(report);

  return {
    title: "Devices",
    el: frame.el,
    dispose: () => {
      window.clearInterval(timer);
    },
  };
}
