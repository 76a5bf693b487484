import { ApiError, csrfToken, describeFailure, signedOut } from "../api/client";
import type { ImportSummary } from "../api/types";
import { formatDateTime } from "../format";
import { h, uid } from "../ui/dom";
import { icon } from "../ui/icons";
import { act, errorBox, messageOf, toast } from "../ui/notify";
import type { Page, PageContext } from "../router";
import { vehicleFrame, vehicleId } from "./vehicle-frame";

export const IMPORT_FORMATS: ReadonlyArray<[string, string]> = [
  ["", "Guess from the file"],
  ["torque-csv", "Torque Pro CSV log"],
  ["csv", "CSV with a time column"],
  ["gpx", "GPX track"],
];

/** The endpoint's address for a file and the choices made on the form. */
export function importUrl(vehicle: number, format: string, dryRun: boolean): string {
  const query = new URLSearchParams();
  if (format) query.set("format", format);
  if (dryRun) query.set("dry_run", "true");
  const text = query.toString();
  return `/api/v1/vehicles/${vehicle}/imports${text ? `?${text}` : ""}`;
}

/** The summary as sentences: what was read and stored, then each reason something was left out. */
export function summaryLines(summary: ImportSummary): string[] {
  const stored = summary.dry_run
    ? `${summary.samples_read} would be stored (dry run: nothing was stored)`
    : `${summary.stored} stored, ${summary.duplicates} already stored before`;
  const lines = [`${summary.samples_read} samples read: ${stored}.`];
  for (const [reason, count] of Object.entries(summary.skipped_rows)) {
    lines.push(`${count} ${count === 1 ? "row" : "rows"} skipped: ${reason}.`);
  }
  for (const [reason, count] of Object.entries(summary.skipped_values)) {
    lines.push(`${count} ${count === 1 ? "value" : "values"} skipped: ${reason}.`);
  }
  if (summary.unknown_columns.length) {
    lines.push(`Columns left out: ${summary.unknown_columns.join(", ")}.`);
  }
  return lines;
}

/** Sends the file with XMLHttpRequest: fetch cannot tell how much of a body has gone. */
function upload(
  url: string,
  file: File,
  onProgress: (fraction: number) => void,
  signal: AbortSignal,
): Promise<ImportSummary> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", url);
    request.setRequestHeader("Accept", "application/json");
    request.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    request.setRequestHeader("X-CSRF-Token", csrfToken());
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      let body: { detail?: unknown } = {};
      try {
        body = JSON.parse(request.responseText) as { detail?: unknown };
      } catch {
        body = {};
      }
      if (request.status === 200) resolve(body as unknown as ImportSummary);
      else if (request.status === 401) reject(signedOut());
      else
        reject(
          new ApiError(
            request.status,
            describeFailure(request.status, body, request.getResponseHeader("X-Request-ID")),
          ),
        );
    });
    request.addEventListener("error", () => {
      reject(new ApiError(0, "Cannot reach the server. Check the connection and try again."));
    });
    request.addEventListener("abort", () => {
      reject(new DOMException("aborted", "AbortError"));
    });
    signal.addEventListener(
      "abort",
      () => {
        request.abort();
      },
      { once: true },
    );
    request.send(file);
  });
}

export function importPage(ctx: PageContext): Page {
  const id = vehicleId(ctx);
  const frame = vehicleFrame(ctx, id, "import");
  const fileId = uid("import-file");
  const formatId = uid("import-format");
  const dryId = uid("import-dry");
  const file = h("input", {
    id: fileId,
    name: "file",
    type: "file",
    accept: ".csv,.txt,.gpx,text/csv,application/gpx+xml",
    required: true,
  });
  const format = h(
    "select",
    { id: formatId, name: "format" },
    ...IMPORT_FORMATS.map(([value, label]) => h("option", { value }, label)),
  );
  const dryRun = h("input", { id: dryId, name: "dry_run", type: "checkbox" });
  const submit = h("button", { type: "submit", class: "button primary" }, icon("plus"), "Import");
  const progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Upload progress" });
  const status = h("p", { class: "muted", role: "status" });
  const formMessage = h("div", { class: "form-message" });
  const result = h("section", { "aria-labelledby": "import-result-title", hidden: true });
  const form = h(
    "form",
    { class: "card add-form", novalidate: true, "aria-labelledby": "import-title" },
    h("h2", { id: "import-title" }, "Import a log"),
    h(
      "p",
      { class: "muted" },
      "Torque Pro's CSV logs, CSV files with a time column (our own CSV export among them) and GPX tracks become this vehicle's history: charts, trips and rollups, with no alert. Importing a file twice stores nothing twice.",
    ),
    formMessage,
    h(
      "div",
      { class: "form-row" },
      h("div", { class: "field" }, h("label", { for: fileId }, "File"), file),
      h("div", { class: "field" }, h("label", { for: formatId }, "Format"), format),
      h("div", { class: "field" }, h("label", { for: dryId }, dryRun, " Dry run (read, store nothing)")),
      h("div", { class: "field field-submit" }, submit),
    ),
    progress,
    status,
  );

  const show = (summary: ImportSummary): void => {
    const when =
      summary.first_ts !== null && summary.last_ts !== null
        ? [h("p", { class: "muted" }, `From ${formatDateTime(summary.first_ts)} to ${formatDateTime(summary.last_ts)}`)]
        : [];
    result.replaceChildren(
      h("h2", { id: "import-result-title" }, summary.dry_run ? "What the import would store" : "Imported"),
      h(
        "div",
        { class: "card" },
        ...when,
        h("ul", { class: "import-summary" }, ...summaryLines(summary).map((line) => h("li", null, line))),
      ),
    );
    result.hidden = false;
  };

  form.addEventListener(
    "submit",
    act(async (event) => {
      event.preventDefault();
      formMessage.replaceChildren();
      const chosen = file.files?.[0];
      if (!chosen || id === null) {
        formMessage.replaceChildren(errorBox("Choose a log file to import."));
        file.focus();
        return;
      }
      submit.disabled = true;
      progress.hidden = false;
      progress.value = 0;
      status.textContent = `Uploading ${chosen.name}…`;
      try {
        const summary = await upload(
          importUrl(id, format.value, dryRun.checked),
          chosen,
          (fraction) => {
            progress.value = fraction;
            if (fraction >= 1) status.textContent = "Storing the samples and building trips…";
          },
          ctx.signal,
        );
        status.textContent = "";
        show(summary);
        toast(summary.dry_run ? "Read: nothing was stored." : `${summary.stored} samples stored.`, "success");
      } catch (error) {
        if (!(error instanceof ApiError) || error.status === 401) throw error;
        status.textContent = "";
        formMessage.replaceChildren(errorBox(messageOf(error)));
      } finally {
        submit.disabled = false;
        progress.hidden = true;
      }
    }),
  );

  frame.body.append(form, result);
  frame.vehicle
    .then((vehicle) => {
      if (vehicle && (vehicle.role ?? "owner") !== "owner") {
        frame.body.replaceChildren(errorBox("Only the vehicle's owner can import logs into it."));
      }
    })
    .catch(() => undefined);
  return { title: "Import", el: frame.el };
}
