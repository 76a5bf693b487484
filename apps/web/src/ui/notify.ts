import { ApiError, SignedOutError, isAbort } from "../api/client";
import { h } from "./dom";

let region: HTMLElement | null = null;

function toastRegion(): HTMLElement {
  if (!region) {
    region = h("div", { class: "toasts", "aria-live": "polite", "aria-relevant": "additions" });
    document.body.appendChild(region);
  }
  return region;
}

export type Tone = "info" | "success" | "error";

/** A message in the corner: errors stay until dismissed, the rest fade after a few seconds. */
export function toast(message: string, tone: Tone = "info"): void {
  const close = h("button", { class: "icon-button", type: "button", "aria-label": "Dismiss" }, "×");
  const item = h(
    "div",
    { class: `toast toast-${tone}`, role: tone === "error" ? "alert" : "status" },
    h("span", null, message),
    close,
  );
  close.addEventListener("click", () => {
    item.remove();
  });
  toastRegion().appendChild(item);
  if (tone !== "error")
    window.setTimeout(() => {
      item.remove();
    }, 5000);
}

export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return `Unexpected error: ${error.message}`;
  return "Unexpected error.";
}

/** Shows what went wrong, except for what needs no message (ended session, navigation). */
export function report(error: unknown): void {
  if (error instanceof SignedOutError || isAbort(error)) return;
  toast(messageOf(error), "error");
}

/** An event handler running an async action whose failure is reported, never left uncaught. */
export function act<E extends Event>(action: (event: E) => Promise<void>): (event: E) => void {
  return (event: E) => {
    action(event).catch(report);
  };
}

/** An inline error box (role=alert) to put in a form or a page. */
export function errorBox(message: string): HTMLElement {
  return h("p", { class: "error-box", role: "alert" }, message);
}
