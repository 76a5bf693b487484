import { h, uid } from "./dom";

interface ConfirmOptions {
  title: string;
  body: string | readonly string[];
  confirm: string;
  danger?: boolean;
}

function openDialog(dialog: HTMLDialogElement): void {
  document.body.appendChild(dialog);
  dialog.showModal();
}

/** A modal question; resolves true only when the person confirms. */
export function confirmDialog(options: ConfirmOptions): Promise<boolean> {
  return new Promise((resolve) => {
    const titleId = uid("dialog-title");
    const paragraphs = typeof options.body === "string" ? [options.body] : options.body;
    const cancel = h("button", { type: "button", class: "button", value: "cancel" }, "Cancel");
    const ok = h(
      "button",
      { type: "submit", class: options.danger ? "button danger" : "button primary", value: "ok" },
      options.confirm,
    );
    const form = h(
      "form",
      { method: "dialog" },
      h("h2", { id: titleId }, options.title),
      paragraphs.map((p) => h("p", null, p)),
      h("div", { class: "dialog-actions" }, cancel, ok),
    );
    const dialog = h("dialog", { "aria-labelledby": titleId }, form);
    cancel.addEventListener("click", () => {
      dialog.close("cancel");
    });
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    openDialog(dialog);
    cancel.focus();
  });
}

interface PromptOptions {
  title: string;
  label: string;
  value: string;
  confirm: string;
  maxLength?: number;
}

/** A modal with one text field; resolves to the trimmed text, or null when cancelled. */
export function promptDialog(options: PromptOptions): Promise<string | null> {
  return new Promise((resolve) => {
    const titleId = uid("dialog-title");
    const inputId = uid("dialog-input");
    const input = h("input", {
      id: inputId,
      type: "text",
      value: options.value,
      required: true,
      maxlength: options.maxLength ?? 100,
      autocomplete: "off",
    });
    const cancel = h("button", { type: "button", class: "button" }, "Cancel");
    const form = h(
      "form",
      { method: "dialog" },
      h("h2", { id: titleId }, options.title),
      h("div", { class: "field" }, h("label", { for: inputId }, options.label), input),
      h(
        "div",
        { class: "dialog-actions" },
        cancel,
        h("button", { type: "submit", class: "button primary", value: "ok" }, options.confirm),
      ),
    );
    const dialog = h("dialog", { "aria-labelledby": titleId }, form);
    cancel.addEventListener("click", () => {
      dialog.close("cancel");
    });
    dialog.addEventListener("close", () => {
      const text = input.value.trim();
      resolve(dialog.returnValue === "ok" && text ? text : null);
      dialog.remove();
    });
    openDialog(dialog);
    input.select();
  });
}
