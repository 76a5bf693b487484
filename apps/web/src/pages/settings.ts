import { SignedOutError } from "../api/client";
import type { UnitSystem } from "../api/types";
import { h, uid } from "../ui/dom";
import { act, errorBox, messageOf, toast } from "../ui/notify";
import type { Page, PageContext } from "../router";
import { DisplayUnits, chooseUnits, displayUnits } from "../units";

// What each system looks like, with figures the person knows from a dashboard.
const EXAMPLES: ReadonlyArray<[string, number]> = [
  ["km/h", 100],
  ["°C", 90],
  ["kPa", 220],
  ["L/100km", 6.5],
];

function example(units: DisplayUnits, system: UnitSystem): string {
  const other = new DisplayUnits(units.table, system);
  return EXAMPLES.map(([unit, value]) => {
    const shown = other.of(unit);
    // Economy and psi need a decimal to tell systems apart; the rest read as whole numbers.
    const digits = unit === "L/100km" || shown.unit === "psi" ? 1 : 0;
    return `${shown.value(value).toFixed(digits)} ${shown.unit}`;
  }).join(" · ");
}

/** The person's own settings: today, the units figures are shown in. */
export function settingsPage(ctx: PageContext): Page {
  const message = h("div");
  const choices = h("div", { class: "unit-choices", "aria-busy": "true" });
  const save = h("button", { type: "submit", class: "button primary" }, "Save");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "units-title", novalidate: true },
    h("h2", { id: "units-title" }, "Units"),
    h(
      "p",
      { class: "muted" },
      "Gauges, charts, trips, alerts and CSV downloads show figures in these units. The server keeps what the car sent as it was.",
    ),
    message,
    h("fieldset", null, h("legend", { class: "visually-hidden" }, "Unit system"), choices),
    save,
  );

  const paint = (units: DisplayUnits): void => {
    choices.removeAttribute("aria-busy");
    choices.replaceChildren(
      ...units.table.systems.map((system) => {
        const id = uid("units");
        const hintId = `${id}-hint`;
        return h(
          "div",
          { class: "field check-field unit-choice" },
          h("input", {
            type: "radio",
            name: "units",
            id,
            value: system.id,
            checked: system.id === units.system,
            "aria-describedby": hintId,
          }),
          h(
            "div",
            null,
            h("label", { for: id }, system.label),
            h("p", { id: hintId, class: "hint" }, example(units, system.id)),
          ),
        );
      }),
    );
  };

  form.addEventListener(
    "submit",
    act(async (event) => {
      event.preventDefault();
      const picked = form.querySelector<HTMLInputElement>('input[name="units"]:checked');
      if (!picked) return;
      const units = await chooseUnits(picked.value as UnitSystem);
      paint(units);
      toast(`Figures are now shown in ${units.label(units.system).split(" (")[0] ?? units.system}.`, "success");
    }),
  );

  displayUnits()
    .then((units) => {
      if (!ctx.signal.aborted) paint(units);
    })
    .catch((error: unknown) => {
      if (ctx.signal.aborted || error instanceof SignedOutError) return;
      choices.removeAttribute("aria-busy");
      message.replaceChildren(errorBox(messageOf(error)));
    });

  return {
    title: "Settings",
    el: h(
      "section",
      { class: "page narrow" },
      h("div", { class: "page-head" }, h("div", null, h("h1", null, "Settings"))),
      form,
    ),
  };
}
