import { ApiError, SignedOutError, api, get } from "../api/client";
import type { Alert, AlertRule, RuleKind, Vehicle } from "../api/types";
import { formatDateTime } from "../format";
import { PIDS, pidLabel } from "../pids";
import { confirmDialog } from "../ui/dialog";
import { h, uid } from "../ui/dom";
import { icon } from "../ui/icons";
import { act, errorBox, messageOf, toast } from "../ui/notify";
import type { Page, PageContext } from "../router";
import { type DisplayUnits, displayUnits } from "../units";
import { vehicleFrame, vehicleId } from "./vehicle-frame";

const REFRESH_MS = 10_000;
/** Alerts per page of the history (newest first; "Show older" reads the next). */
const HISTORY_PAGE = 20;
/** The server's default cooldown, for a new rule. */
const DEFAULT_COOLDOWN_MIN = 5;

function minutesText(minutes: number): string {
  const shown = Number.isInteger(minutes) ? String(minutes) : minutes.toFixed(1);
  return `${shown} min`;
}

/** What a cooldown does, in words the rule form and cards show. */
export function cooldownEffect(cooldownS: number): string {
  if (cooldownS <= 0) return "No cooldown: every time the condition holds again, the rule fires again.";
  const span = minutesText(cooldownS / 60);
  return `After firing, this rule stays quiet for ${span} even if the condition holds again.`;
}

/** "Coolant temperature above 221 °F for 30 s (clears below 212)", "No data for 60 min": in
 * the reader's units, which the server converts the stored rule to (`display`). */
export function describeRule(rule: AlertRule): string {
  if (rule.kind === "silence") return `No data for ${rule.silence_minutes ?? "?"} min`;
  if (rule.kind === "dtc") return "A new trouble code";
  const shown = rule.display ?? {
    unit: rule.unit ?? "",
    op: rule.op,
    threshold: rule.threshold,
    clear_threshold: rule.clear_threshold,
  };
  const unit = shown.unit;
  const parts = [
    `${rule.pid ? pidLabel(rule.pid) : "?"} ${shown.op ?? "?"} ${shown.threshold ?? "?"}${unit ? ` ${unit}` : ""}`,
  ];
  if (rule.duration_s > 0) parts.push(`for ${rule.duration_s} s`);
  if (shown.clear_threshold !== null)
    parts.push(`(clears ${shown.op === "above" ? "below" : "above"} ${shown.clear_threshold})`);
  if (rule.while_parked) parts.push("while parked");
  return parts.join(" ");
}

function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  const controlId = control.id || uid("field");
  control.id = controlId;
  const hintId = hint ? `${controlId}-hint` : null;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h(
    "div",
    { class: "field" },
    h("label", { for: controlId }, label),
    control,
    hint ? h("p", { id: hintId, class: "hint" }, hint) : null,
  );
}

function checkField(label: string, box: HTMLInputElement): HTMLElement {
  box.id = box.id || uid("check");
  return h("div", { class: "field check-field" }, box, h("label", { for: box.id }, label));
}

function optionalNumber(input: HTMLInputElement): number | null {
  const raw = input.value.trim();
  return raw === "" ? null : Number(raw);
}

export function alertsPage(ctx: PageContext): Page {
  const id = vehicleId(ctx);
  const frame = vehicleFrame(ctx, id, "alerts");
  const base = `/api/v1/vehicles/${id ?? 0}`;
  const rules = h("ul", { class: "rule-list", "aria-busy": "true" });
  const alerts = h("ol", { class: "alert-list", "aria-busy": "true" });
  const message = h("div");
  let owner = false;

  const ruleCard = (rule: AlertRule): HTMLElement => {
    const titleId = uid("rule");
    const remove = h(
      "button",
      { type: "button", class: "button small ghost danger-text", "aria-label": `Delete rule ${rule.name}` },
      "Delete",
    );
    remove.addEventListener(
      "click",
      act(async () => {
        const sure = await confirmDialog({
          title: `Delete the rule ${rule.name}?`,
          body: ["Its past alerts stay in the history."],
          confirm: "Delete rule",
          danger: true,
        });
        if (!sure) return;
        await api<undefined>("DELETE", `${base}/alert-rules/${rule.id}`);
        toast(`Rule ${rule.name} was deleted.`, "success");
        await load();
      }),
    );
    const edit = h(
      "button",
      { type: "button", class: "button small ghost", "aria-label": `Edit rule ${rule.name}` },
      "Edit",
    );
    edit.addEventListener("click", () => {
      startEditing(rule);
    });
    const toggle = h(
      "button",
      {
        type: "button",
        class: "button small ghost",
        "aria-label": `${rule.enabled ? "Pause" : "Resume"} rule ${rule.name}`,
      },
      rule.enabled ? "Pause" : "Resume",
    );
    toggle.addEventListener(
      "click",
      act(async () => {
        await api<AlertRule>("PATCH", `${base}/alert-rules/${rule.id}`, { body: { enabled: !rule.enabled } });
        await load();
      }),
    );
    return h(
      "li",
      { class: "card rule-card", "aria-labelledby": titleId, "data-rule": rule.id },
      h(
        "div",
        { class: "rule-head" },
        h("h3", { id: titleId }, rule.name),
        rule.firing ? h("span", { class: "badge badge-danger" }, "Firing") : null,
        rule.enabled ? null : h("span", { class: "badge badge-muted" }, "Paused"),
      ),
      h("p", null, describeRule(rule)),
      h("p", { class: "muted rule-cooldown" }, cooldownEffect(rule.cooldown_s)),
      rule.webhook_url ? h("p", { class: "muted" }, "Webhook: ", h("span", { class: "mono" }, rule.webhook_url)) : null,
      owner ? h("div", { class: "card-secondary" }, edit, toggle, remove) : null,
    );
  };

  const alertItem = (alert: Alert): HTMLElement => {
    const titleId = uid("alert");
    const item = h(
      "li",
      {
        class: `card alert-card${alert.acknowledged_at ? " acknowledged" : ""}`,
        "aria-labelledby": titleId,
        "data-alert": alert.id,
      },
      h(
        "div",
        { class: "rule-head" },
        h("h3", { id: titleId }, alert.rule_name),
        alert.cleared_ts === null
          ? h("span", { class: "badge badge-danger" }, "Open")
          : h("span", { class: "badge badge-muted" }, "Cleared"),
        alert.acknowledged_at ? h("span", { class: "badge badge-ok" }, "Acknowledged") : null,
      ),
      h("p", null, alert.message),
      h(
        "p",
        { class: "muted" },
        h("time", { datetime: new Date(alert.fired_ts).toISOString() }, formatDateTime(alert.fired_ts)),
      ),
    );
    if (owner && !alert.acknowledged_at) {
      const ack = h(
        "button",
        {
          type: "button",
          class: "button small",
          "aria-label": `Acknowledge ${alert.rule_name} of ${formatDateTime(alert.fired_ts)}`,
        },
        "Acknowledge",
      );
      ack.addEventListener(
        "click",
        act(async () => {
          ack.disabled = true;
          await api<Alert>("POST", `/api/v1/alerts/${alert.id}/acknowledge`);
          toast("Alert acknowledged.", "success");
          await load();
        }),
      );
      item.append(h("div", { class: "card-secondary" }, ack));
    }
    return item;
  };

  // The history, newest first by the time each alert fired; the refresh reads as many as are
  // shown, "Show older" the page after the last one (the API's before_id cursor).
  let shownAlerts: Alert[] = [];
  let wanted = HISTORY_PAGE;
  const older = h("button", { type: "button", class: "button ghost", hidden: true }, "Show older alerts");
  const paintAlerts = (more: boolean): void => {
    alerts.replaceChildren(
      ...(shownAlerts.length ? shownAlerts.map(alertItem) : [h("li", { class: "card empty" }, "No alerts so far.")]),
    );
    older.hidden = !more;
  };
  older.addEventListener(
    "click",
    act(async () => {
      const last = shownAlerts[shownAlerts.length - 1];
      if (!last) return;
      older.disabled = true;
      try {
        const page = await get<Alert[]>(`${base}/alerts?limit=${HISTORY_PAGE}&before_id=${last.id}`, {
          signal: ctx.signal,
        });
        shownAlerts = [...shownAlerts, ...page];
        wanted = Math.min(500, Math.max(HISTORY_PAGE, shownAlerts.length));
        paintAlerts(page.length === HISTORY_PAGE);
      } finally {
        older.disabled = false;
      }
    }),
  );
  const load = async (): Promise<void> => {
    const [ruleList, alertList] = await Promise.all([
      get<AlertRule[]>(`${base}/alert-rules`, { signal: ctx.signal }),
      get<Alert[]>(`${base}/alerts?limit=${wanted}`, { signal: ctx.signal }),
    ]);
    rules.removeAttribute("aria-busy");
    alerts.removeAttribute("aria-busy");
    message.replaceChildren();
    rules.replaceChildren(
      ...(ruleList.length ? ruleList.map(ruleCard) : [h("li", { class: "card empty" }, "No rules yet.")]),
    );
    shownAlerts = alertList;
    paintAlerts(alertList.length === wanted);
  };
  const refresh = (): void => {
    load().catch((error: unknown) => {
      if (ctx.signal.aborted || error instanceof SignedOutError) return;
      rules.removeAttribute("aria-busy");
      alerts.removeAttribute("aria-busy");
      message.replaceChildren(errorBox(messageOf(error)));
    });
  };

  // The new-rule form: the fields of the chosen kind only.
  const name = h("input", { name: "name", required: true, maxlength: 100, autocomplete: "off" });
  const kind = h(
    "select",
    { name: "kind" },
    h("option", { value: "threshold" }, "A value crosses a threshold"),
    h("option", { value: "silence" }, "No data for a while"),
    h("option", { value: "dtc" }, "A new trouble code"),
  );
  // Rules take the PID table's names; filled once the catalogue is loaded (frame.vehicle).
  const pid = h("select", { name: "pid" });
  const paintPidChoices = (): void => {
    const standard = [...PIDS.values()].filter((info) => info.standard);
    pid.replaceChildren(
      ...standard.map((info) => h("option", { value: info.name }, `${pidLabel(info.name)} (${info.name})`)),
    );
    pid.value = "COOLANT_TEMP";
  };
  const op = h(
    "select",
    { name: "op" },
    h("option", { value: "above" }, "above"),
    h("option", { value: "below" }, "below"),
  );
  const threshold = h("input", { name: "threshold", type: "number", step: "any", inputmode: "decimal" });
  const duration = h("input", { name: "duration_s", type: "number", min: 0, step: 1, value: "0" });
  const clear = h("input", { name: "clear_threshold", type: "number", step: "any", inputmode: "decimal" });
  const parked = h("input", { name: "while_parked", type: "checkbox" });
  const silence = h("input", { name: "silence_minutes", type: "number", min: 1, step: 1, value: "60" });
  const webhook = h("input", { name: "webhook_url", type: "url", autocomplete: "off", placeholder: "https://…" });
  const cooldown = h("input", {
    name: "cooldown_min",
    type: "number",
    min: 0,
    step: "any",
    inputmode: "decimal",
    value: String(DEFAULT_COOLDOWN_MIN),
  });
  const cooldownField = field(
    "Cooldown (minutes)",
    cooldown,
    `${cooldownEffect(DEFAULT_COOLDOWN_MIN * 60)} Default ${DEFAULT_COOLDOWN_MIN} min.`,
  );
  const cooldownHint = cooldownField.querySelector(".hint");
  const paintCooldown = (): void => {
    const minutes = optionalNumber(cooldown);
    if (!cooldownHint) return;
    const effect =
      minutes === null || !Number.isFinite(minutes) || minutes < 0
        ? "Enter the minutes as a number (0 or more)."
        : cooldownEffect(Math.round(minutes * 60));
    // Why a rule such as "speed above 80 for 2 s" fires only now and then: said where it is set.
    cooldownHint.textContent = `${effect} So "speed above 80 for 2 s" on a car that passes 80 every half minute fires once per cooldown, not every time. Default ${DEFAULT_COOLDOWN_MIN} min; 0 fires every time.`;
  };
  cooldown.addEventListener("input", paintCooldown);
  paintCooldown();
  // Figures are typed in the person's units and sent with that unit: the server stores the
  // rule in the PID's own unit.
  let units: DisplayUnits | null = null;
  const thresholdUnit = h("span", { class: "field-unit" });
  const paintUnits = (): void => {
    const unit = units?.pid(pid.value).unit ?? "";
    thresholdUnit.textContent = unit ? ` (${unit})` : "";
  };
  pid.addEventListener("change", paintUnits);
  const thresholdField = field("Threshold", threshold);
  thresholdField.querySelector("label")?.append(thresholdUnit);
  const clearField = field(
    "Clears at (optional)",
    clear,
    "The value that ends an episode, in the threshold's unit; default the threshold.",
  );
  const thresholdFields = h(
    "div",
    { class: "form-row" },
    field("PID", pid),
    field("When", op),
    thresholdField,
    field("For (seconds)", duration, "How long the condition must hold."),
    clearField,
  );
  const parkedField = checkField("Only while parked (speed 0, engine off)", parked);
  const silenceFields = h("div", { class: "form-row" }, field("Silent for (minutes)", silence));
  const formMessage = h("div", { class: "form-message" });
  const formTitle = h("h2", { id: "add-rule-title" }, "Add a rule");
  const submit = h("button", { type: "submit", class: "button primary" }, icon("plus"), "Add rule");
  const cancel = h("button", { type: "button", class: "button ghost", hidden: true }, "Cancel");
  const form = h(
    "form",
    { class: "card add-form", novalidate: true, "aria-labelledby": "add-rule-title" },
    formTitle,
    formMessage,
    h("div", { class: "form-row" }, field("Name", name), field("Kind", kind)),
    thresholdFields,
    parkedField,
    silenceFields,
    h("div", { class: "form-row" }, cooldownField),
    h(
      "div",
      { class: "form-row" },
      field("Webhook URL (optional)", webhook, "Each alert is POSTed here, signed with the rule's secret."),
    ),
    h("div", { class: "form-actions" }, submit, cancel),
  );
  // The form adds a rule, or changes the one being edited (its kind stays as it is).
  let editing: AlertRule | null = null;
  const resetForm = (): void => {
    editing = null;
    formTitle.textContent = "Add a rule";
    submit.replaceChildren(icon("plus"), "Add rule");
    cancel.hidden = true;
    kind.disabled = false;
    name.value = "";
    threshold.value = "";
    clear.value = "";
    webhook.value = "";
    duration.value = "0";
    parked.checked = false;
    cooldown.value = String(DEFAULT_COOLDOWN_MIN);
    paintCooldown();
    formMessage.replaceChildren();
  };
  const startEditing = (rule: AlertRule): void => {
    editing = rule;
    formTitle.textContent = `Edit rule ${rule.name}`;
    submit.replaceChildren("Save changes");
    cancel.hidden = false;
    formMessage.replaceChildren();
    name.value = rule.name;
    kind.value = rule.kind;
    kind.disabled = true;
    showKind();
    if (rule.kind === "threshold") {
      // In the reader's units, as the rule card says it; saved back with that unit.
      const shown = rule.display ?? {
        unit: rule.unit ?? "",
        op: rule.op,
        threshold: rule.threshold,
        clear_threshold: rule.clear_threshold,
      };
      pid.value = rule.pid ?? pid.value;
      op.value = shown.op ?? "above";
      threshold.value = shown.threshold === null ? "" : String(shown.threshold);
      clear.value = shown.clear_threshold === null ? "" : String(shown.clear_threshold);
      duration.value = String(rule.duration_s);
      parked.checked = rule.while_parked;
      paintUnits();
    } else if (rule.kind === "silence") {
      silence.value = String(rule.silence_minutes ?? 60);
    }
    webhook.value = rule.webhook_url ?? "";
    cooldown.value = String(rule.cooldown_s / 60);
    paintCooldown();
    form.scrollIntoView({ block: "start" });
    name.focus();
  };
  cancel.addEventListener("click", resetForm);
  const showKind = (): void => {
    thresholdFields.hidden = kind.value !== "threshold";
    parkedField.hidden = kind.value !== "threshold";
    silenceFields.hidden = kind.value !== "silence";
  };
  kind.addEventListener("change", showKind);
  showKind();
  form.addEventListener(
    "submit",
    act(async (event) => {
      event.preventDefault();
      formMessage.replaceChildren();
      const ruleKind = kind.value as RuleKind;
      const body: Record<string, unknown> = { name: name.value.trim(), kind: ruleKind };
      if (!body["name"]) {
        formMessage.replaceChildren(errorBox("Give the rule a name."));
        name.focus();
        return;
      }
      if (ruleKind === "threshold") {
        const limit = optionalNumber(threshold);
        if (limit === null || !Number.isFinite(limit)) {
          formMessage.replaceChildren(errorBox("Enter the threshold as a number."));
          threshold.focus();
          return;
        }
        Object.assign(body, {
          pid: pid.value,
          op: op.value,
          threshold: limit,
          duration_s: optionalNumber(duration) ?? 0,
          while_parked: parked.checked,
        });
        units ??= await displayUnits();
        const unit = units.pid(pid.value).unit;
        if (unit) body["unit"] = unit;
        const clearAt = optionalNumber(clear);
        if (clearAt !== null) body["clear_threshold"] = clearAt;
      } else if (ruleKind === "silence") {
        body["silence_minutes"] = optionalNumber(silence);
      }
      const minutes = optionalNumber(cooldown);
      if (minutes === null || !Number.isFinite(minutes) || minutes < 0) {
        formMessage.replaceChildren(errorBox("Enter the cooldown in minutes (0 or more)."));
        cooldown.focus();
        return;
      }
      body["cooldown_s"] = Math.round(minutes * 60);
      const url = webhook.value.trim();
      if (url) body["webhook_url"] = url;
      try {
        if (editing) {
          // A PATCH takes no kind; an emptied field is cleared.
          delete body["kind"];
          if (editing.kind === "threshold" && !("clear_threshold" in body)) body["clear_threshold"] = null;
          if (!url && editing.webhook_url) body["webhook_url"] = null;
          const saved = await api<AlertRule>("PATCH", `${base}/alert-rules/${editing.id}`, { body });
          toast(`Rule ${saved.name} was saved.`, "success");
        } else {
          const created = await api<AlertRule>("POST", `${base}/alert-rules`, { body });
          toast(`Rule ${created.name} was added.`, "success");
        }
        resetForm();
        await load();
      } catch (error) {
        if (!(error instanceof ApiError) || error.status === 401) throw error;
        formMessage.replaceChildren(errorBox(messageOf(error)));
      }
    }),
  );

  frame.body.append(
    message,
    h("section", { "aria-labelledby": "rules-title" }, h("h2", { id: "rules-title" }, "Rules"), rules),
    form,
    h(
      "section",
      { "aria-labelledby": "alerts-title" },
      h("h2", { id: "alerts-title" }, "Alert history"),
      h("p", { class: "muted" }, "Newest first, by the time each alert fired."),
      alerts,
      older,
    ),
  );
  form.hidden = true;
  frame.vehicle
    .then((vehicle: Vehicle | null) => {
      if (!vehicle) return;
      owner = (vehicle.role ?? "owner") === "owner";
      paintPidChoices();
      form.hidden = !owner;
      refresh();
      displayUnits()
        .then((loaded) => {
          units = loaded;
          paintUnits();
        })
        .catch(() => undefined);
    })
    .catch(() => undefined);
  const timer = window.setInterval(refresh, REFRESH_MS);
  return {
    title: "Alerts",
    el: frame.el,
    dispose: () => {
      window.clearInterval(timer);
    },
  };
}
