import { send } from "../api/client";
import type { DeadLetterStatus, HealthReport } from "../api/types";
import { h } from "../ui/dom";
import { errorBox, messageOf } from "../ui/notify";
import type { Page, PageContext } from "../router";
import { parseMetrics, total, type MetricSample } from "../status/metrics";

const POLL_MS = 5000;
const META_KEYS = new Set(["status", "version", "git_sha", "errors", "dead_letters"]);
const CHECK_NAMES: Readonly<Record<string, string>> = {
  db: "Database",
  redis: "Redis",
  migrations: "Database migrations",
  redis_schema: "Redis schema",
};
const GOOD = new Set(["ok", "embedded"]);

async function report(path: string, signal: AbortSignal): Promise<HealthReport> {
  const response = await send("GET", path, { signal, passStatuses: [503] });
  return (await response.json()) as HealthReport;
}

async function metrics(signal: AbortSignal): Promise<MetricSample[]> {
  const response = await fetch("/metrics", { signal, credentials: "same-origin" });
  if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
  return parseMetrics(await response.text());
}

function fmt(value: number | null, digits = 0): string {
  return value === null
    ? "–"
    : value.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function statusPage(ctx: PageContext): Page {
  const summary = h("div", { class: "status-summary", role: "status", "aria-live": "polite" }, "Checking…");
  const checks = h("tbody");
  const figures = h("dl", { class: "figures" });
  const version = h("p", { class: "muted" });
  const problem = h("div");
  const deadCount = h("p", { class: "muted" }, "–");
  const deadRows = h("tbody");
  const deadTable = h(
    "table",
    { class: "checks", hidden: true },
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        h("th", { scope: "col" }, "Vehicle"),
        h("th", { scope: "col" }, "Error"),
        h("th", { scope: "col" }, "Given up"),
      ),
    ),
    deadRows,
  );
  let previous: { at: number; accepted: number } | null = null;

  const paintChecks = (health: HealthReport, ready: HealthReport): void => {
    const merged: Record<string, string> = {};
    const errors: Record<string, string> = { ...(health.errors ?? {}), ...(ready.errors ?? {}) };
    for (const source of [health, ready]) {
      for (const [key, value] of Object.entries(source)) {
        if (!META_KEYS.has(key) && typeof value === "string") merged[key] = value;
      }
    }
    const entries = Object.entries(merged);
    const bad = entries.filter(([, v]) => !GOOD.has(v));
    summary.className = `status-summary ${bad.length ? "bad" : "good"}`;
    summary.textContent = bad.length
      ? `${bad.length} ${bad.length === 1 ? "check is" : "checks are"} failing`
      : "Everything is working";
    checks.replaceChildren(
      ...entries.map(([key, value]) =>
        h(
          "tr",
          { "data-check": key },
          h("th", { scope: "row" }, CHECK_NAMES[key] ?? key),
          h(
            "td",
            null,
            h(
              "span",
              { class: `badge ${GOOD.has(value) ? "badge-ok" : "badge-danger"}` },
              h("span", { class: "dot", "aria-hidden": "true" }),
              value,
            ),
          ),
          h("td", { class: "muted" }, errors[key] ?? (value === "embedded" ? "in-process broker (no REDIS_URL)" : "")),
        ),
      ),
    );
    const sha = health.git_sha ? ` · commit ${health.git_sha.slice(0, 12)}` : "";
    version.textContent = `Server version ${health.version ?? "unknown"}${sha}`;
  };

  const paintDeadLetters = (dead: DeadLetterStatus | undefined): void => {
    if (!dead) {
      deadCount.textContent = "Unknown (the database is not at head or not answering)";
      deadTable.hidden = true;
      return;
    }
    deadCount.textContent =
      dead.count === 0
        ? "None: every stored batch's rollups and trips are done or on their way."
        : `${fmt(dead.count)} ${dead.count === 1 ? "batch" : "batches"} given up on after repeated failures (obd2-dashboard dead-letters retries or discards them)${dead.count > dead.newest.length ? `; the newest ${dead.newest.length}:` : ":"}`;
    deadTable.hidden = dead.newest.length === 0;
    deadRows.replaceChildren(
      ...dead.newest.map((letter) =>
        h(
          "tr",
          { "data-dead-letter": String(letter.id) },
          h("td", null, `#${letter.vehicle_id}`),
          h(
            "td",
            { class: "muted" },
            `${letter.error} (${letter.attempts} ${letter.attempts === 1 ? "try" : "tries"})`,
          ),
          h("td", null, new Date(letter.at).toLocaleString()),
        ),
      ),
    );
  };

  const paintFigures = (samples: MetricSample[]): void => {
    const now = performance.now();
    const accepted = total(samples, "obd2_ingest_samples_total", { result: "accepted" }) ?? 0;
    let rate: string = "measuring…";
    if (previous && now > previous.at) {
      rate = `${fmt(Math.max(0, (accepted - previous.accepted) / ((now - previous.at) / 1000)), 1)} /s`;
    }
    previous = { at: now, accepted };
    const rows: Array<[string, string, string]> = [
      ["Ingest rate", rate, "samples accepted per second by this API process"],
      ["Samples received", fmt(accepted), "since this API process started"],
      ["Stream lag", fmt(total(samples, "obd2_stream_lag_messages")), "work entries not yet delivered to a worker"],
      ["Pending work", fmt(total(samples, "obd2_stream_pending")), "delivered but not yet acknowledged"],
      ["Outbox backlog", fmt(total(samples, "obd2_outbox_backlog")), "stored batches waiting for rollups"],
      ["Dead letters", fmt(total(samples, "obd2_dead_letters")), "batches the worker gave up on"],
      ["Devices online", fmt(total(samples, "obd2_devices_online")), "heard from in the last 5 minutes"],
      ["Live streams open", fmt(total(samples, "obd2_live_streams_open")), "browsers watching, on this process"],
    ];
    figures.replaceChildren(
      ...rows.map(([label, value, hint]) =>
        h("div", { class: "figure" }, h("dt", null, label), h("dd", null, value), h("dd", { class: "hint" }, hint)),
      ),
    );
  };

  const poll = async (): Promise<void> => {
    try {
      const [health, ready, metricSamples] = await Promise.all([
        report("/healthz", ctx.signal),
        report("/readyz", ctx.signal),
        metrics(ctx.signal),
      ]);
      problem.replaceChildren();
      paintChecks(health, ready);
      paintFigures(metricSamples);
      paintDeadLetters(ready.dead_letters as DeadLetterStatus | undefined);
    } catch (error) {
      if (ctx.signal.aborted) return;
      summary.className = "status-summary bad";
      summary.textContent = "The server is not answering";
      problem.replaceChildren(errorBox(messageOf(error)));
    }
  };

  poll().catch(() => undefined);
  const timer = window.setInterval(() => {
    poll().catch(() => undefined);
  }, POLL_MS);

  return {
    title: "Status",
    el: h(
      "section",
      { class: "page" },
      h("div", { class: "page-head" }, h("div", null, h("h1", null, "Status"), version)),
      summary,
      problem,
      h(
        "section",
        { class: "card", "aria-labelledby": "checks-title" },
        h("h2", { id: "checks-title" }, "Dependencies"),
        h(
          "table",
          { class: "checks" },
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              h("th", { scope: "col" }, "Check"),
              h("th", { scope: "col" }, "State"),
              h("th", { scope: "col" }, "Detail"),
            ),
          ),
          checks,
        ),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "pipeline-title" },
        h("h2", { id: "pipeline-title" }, "Pipeline"),
        figures,
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "dead-letters-title" },
        h("h2", { id: "dead-letters-title" }, "Dead letters"),
        deadCount,
        deadTable,
      ),
    ),
    dispose: () => {
      window.clearInterval(timer);
    },
  };
}
