import { ApiError, api, get } from "../api/client";
import type { Command, Dtc, FreezeFrame } from "../api/types";
import { formatDateTime } from "../format";
import { formatValue, pidLabel } from "../pids";
import { confirmDialog } from "../ui/dialog";
import { h, replaceChildren, uid } from "../ui/dom";
import { icon } from "../ui/icons";
import { act, errorBox, messageOf, toast } from "../ui/notify";
import type { Page, PageContext } from "../router";
import { type DisplayUnits, displayUnits } from "../units";
import { vehicleFrame, vehicleId } from "./vehicle-frame";

const REFRESH_MS = 15_000;
const FOLLOW_TRIES = 30;

const GROUPS: ReadonlyArray<{ key: string; title: string; kinds: readonly string[]; note: string }> = [
  {
    key: "active",
    title: "Active",
    kinds: ["active", "stored", "confirmed"],
    note: "Faults the engine computer has confirmed; the check-engine light may be on.",
  },
  {
    key: "pending",
    title: "Pending",
    kinds: ["pending"],
    note: "Seen once; confirmed if they happen again on a later drive.",
  },
  {
    key: "permanent",
    title: "Permanent",
    kinds: ["permanent"],
    note: "Cleared only by the car itself, once it has checked the fault is gone.",
  },
];

export const CLEAR_EXPLANATION = [
  "The Bridge Agent asks the car to clear its trouble codes (OBD mode 04).",
  "This turns the check-engine light off and erases stored and pending codes and their freeze-frame data. It also resets the readiness monitors: an emissions inspection may fail until the car has been driven enough for them to complete again.",
  "Permanent codes stay until the car sees the fault is gone. Clearing does not repair anything: a real fault comes back. Do it with the ignition on and the engine off.",
];

function when(value: string | number | null): string {
  return value === null ? "–" : formatDateTime(value);
}

/** The PID values the car kept when it stored the code, in the order of the PID table. */
function freezeFrame(frame: FreezeFrame | null, units: DisplayUnits): HTMLElement | null {
  const values = Object.entries(frame?.values ?? {}).filter(([, value]) => Number.isFinite(value));
  if (values.length === 0) return null;
  values.sort(([a], [b]) => pidLabel(a).localeCompare(pidLabel(b)));
  return h(
    "details",
    { class: "freeze-frame" },
    h("summary", null, `Freeze frame (${values.length} ${values.length === 1 ? "value" : "values"})`),
    h("p", { class: "muted" }, "What the car recorded at the moment it stored this code."),
    h(
      "dl",
      { class: "facts" },
      values.map(([pid, value]) => {
        const shown = units.pid(pid);
        const text = formatValue(pid, shown.value(value));
        return h(
          "div",
          { "data-pid": pid },
          h("dt", null, pidLabel(pid)),
          h("dd", null, shown.unit ? `${text} ${shown.unit}` : text),
        );
      }),
    ),
  );
}

export function dtcsPage(ctx: PageContext): Page {
  const id = vehicleId(ctx);
  const frame = vehicleFrame(ctx, id, "dtcs");
  const content = h("div", { "aria-busy": "true" });
  const message = h("div");
  const clearButton = h("button", { type: "button", class: "button danger-outline" }, icon("warning"), "Clear codes…");

  const cardIn = (dtc: Dtc, units: DisplayUnits): HTMLElement => {
    const titleId = uid("dtc");
    return h(
      "article",
      { class: "card dtc-card", "aria-labelledby": titleId },
      h("h3", { id: titleId, class: "dtc-code mono" }, dtc.code),
      h("p", null, dtc.description ?? "No description for this code."),
      h(
        "dl",
        { class: "facts" },
        h("div", null, h("dt", null, "First seen"), h("dd", null, when(dtc.first_seen))),
        h("div", null, h("dt", null, "Last seen"), h("dd", null, when(dtc.last_seen))),
        dtc.cleared_at === null ? null : h("div", null, h("dt", null, "Cleared"), h("dd", null, when(dtc.cleared_at))),
      ),
      freezeFrame(dtc.freeze_frame ?? null, units),
    );
  };

  const paint = (dtcs: readonly Dtc[], units: DisplayUnits): void => {
    const card = (dtc: Dtc): HTMLElement => cardIn(dtc, units);
    content.removeAttribute("aria-busy");
    const current = dtcs.filter((d) => d.cleared_at === null);
    const cleared = dtcs.filter((d) => d.cleared_at !== null);
    const sections = GROUPS.map((group) => {
      const items = current.filter((d) => group.kinds.includes(d.kind));
      const titleId = `dtc-${group.key}`;
      return h(
        "section",
        { class: "dtc-group", "aria-labelledby": titleId },
        h("h2", { id: titleId }, `${group.title} `, h("span", { class: "badge badge-muted" }, String(items.length))),
        h("p", { class: "muted" }, group.note),
        items.length
          ? h("div", { class: "dtc-list" }, items.map(card))
          : h("p", { class: "card empty" }, `No ${group.title.toLowerCase()} codes.`),
      );
    });
    replaceChildren(
      content,
      sections,
      cleared.length
        ? h(
            "section",
            { class: "dtc-group", "aria-labelledby": "dtc-cleared" },
            h("h2", { id: "dtc-cleared" }, "Cleared earlier"),
            h("div", { class: "dtc-list" }, cleared.map(card)),
          )
        : null,
    );
    clearButton.disabled = current.length === 0;
  };

  const commandNote = h("p", { class: "muted", "aria-live": "polite" });

  const paintCommand = (commands: readonly Command[]): void => {
    const last = commands.find((c) => c.kind === "clear_dtcs") ?? commands[0];
    if (!last) {
      commandNote.textContent = "";
      return;
    }
    const when = last.created_at ? formatDateTime(last.created_at) : "";
    if (last.ok === null) commandNote.textContent = `Clearing requested ${when}: waiting for the Bridge Agent.`;
    else if (last.ok) commandNote.textContent = `The car cleared its codes (requested ${when}).`;
    else commandNote.textContent = `Clearing failed (requested ${when}): ${last.detail ?? "no detail"}.`;
  };

  const load = async (): Promise<void> => {
    if (id === null) return;
    const [dtcs, commands, units] = await Promise.all([
      get<Dtc[]>(`/api/v1/vehicles/${id}/dtcs`, { signal: ctx.signal }),
      get<Command[]>(`/api/v1/vehicles/${id}/commands`, { signal: ctx.signal }),
      displayUnits(),
    ]);
    paint(dtcs, units);
    paintCommand(commands);
    message.replaceChildren();
  };

  // Until the agent has answered the clear command, look again every second (for a while).
  const followCommand = async (): Promise<void> => {
    for (let i = 0; i < FOLLOW_TRIES && !ctx.signal.aborted; i += 1) {
      await load();
      if (!commandNote.textContent.includes("waiting")) return;
      await new Promise((resolve) => window.setTimeout(resolve, 1000));
    }
  };

  const refresh = (): void => {
    load().catch((error: unknown) => {
      if (ctx.signal.aborted || (error instanceof ApiError && error.status === 401)) return;
      content.removeAttribute("aria-busy");
      message.replaceChildren(errorBox(messageOf(error)));
    });
  };

  clearButton.addEventListener(
    "click",
    act(async () => {
      const sure = await confirmDialog({
        title: "Clear the trouble codes?",
        body: CLEAR_EXPLANATION,
        confirm: "Clear codes",
        danger: true,
      });
      if (!sure || id === null) return;
      try {
        await api<Command>("POST", `/api/v1/vehicles/${id}/dtcs/clear`, { body: { confirm: true } });
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 409) throw error;
        message.replaceChildren(errorBox(messageOf(error)));
        return;
      }
      toast("Sent to the car: the codes are cleared when the Bridge Agent has done it.", "success");
      await followCommand();
    }),
  );

  frame.body.append(
    h(
      "div",
      { class: "page-tools" },
      h("p", { class: "muted" }, "Trouble codes the Bridge Agent read from the car."),
      clearButton,
    ),
    commandNote,
    message,
    content,
  );
  frame.vehicle
    .then((vehicle) => {
      if (!vehicle) return;
      clearButton.hidden = (vehicle.role ?? "owner") !== "owner";
      refresh();
    })
    .catch(() => undefined);
  const timer = window.setInterval(refresh, REFRESH_MS);
  return {
    title: "Trouble codes",
    el: frame.el,
    dispose: () => {
      window.clearInterval(timer);
    },
  };
}
