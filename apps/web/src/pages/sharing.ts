import { ApiError, SignedOutError, api, get } from "../api/client";
import type { Invitation, InvitationSent, Share } from "../api/types";
import { formatDateTime } from "../format";
import { confirmDialog } from "../ui/dialog";
import { h, uid } from "../ui/dom";
import { icon } from "../ui/icons";
import { act, errorBox, messageOf, toast } from "../ui/notify";
import type { Page, PageContext } from "../router";
import { vehicleFrame, vehicleId } from "./vehicle-frame";

export function sharingPage(ctx: PageContext): Page {
  const id = vehicleId(ctx);
  const frame = vehicleFrame(ctx, id, "sharing");
  const base = `/api/v1/vehicles/${id ?? 0}/shares`;
  const list = h("ul", { class: "share-list", "aria-busy": "true" });
  const pendingList = h("ul", { class: "share-list" });
  const pending = h(
    "section",
    { "aria-labelledby": "pending-title", hidden: true },
    h("h2", { id: "pending-title" }, "Invited, not yet accepted"),
    pendingList,
  );
  const message = h("div");

  const item = (share: Share): HTMLElement => {
    const remove = h(
      "button",
      { type: "button", class: "button small ghost danger-text", "aria-label": `Stop sharing with ${share.email}` },
      "Remove",
    );
    remove.addEventListener(
      "click",
      act(async () => {
        const sure = await confirmDialog({
          title: `Stop sharing with ${share.email}?`,
          body: ["They no longer see this vehicle."],
          confirm: "Remove",
          danger: true,
        });
        if (!sure) return;
        await api<undefined>("DELETE", `${base}/${share.user_id}`);
        toast(`${share.email} no longer sees this vehicle.`, "success");
        await load();
      }),
    );
    return h(
      "li",
      { class: "card share-card", "data-user": share.user_id },
      h(
        "div",
        null,
        h("p", { class: "share-email" }, share.email),
        h("p", { class: "muted" }, `Read-only since ${formatDateTime(share.created_at)}`),
      ),
      remove,
    );
  };

  const invitationsBase = `/api/v1/vehicles/${id ?? 0}/invitations`;
  const invitationItem = (invitation: Invitation): HTMLElement => {
    const withdraw = h(
      "button",
      {
        type: "button",
        class: "button small ghost danger-text",
        "aria-label": `Withdraw the invitation to ${invitation.email}`,
      },
      "Withdraw",
    );
    withdraw.addEventListener(
      "click",
      act(async () => {
        await api<undefined>("DELETE", `${invitationsBase}/${invitation.id}`);
        toast(`The invitation to ${invitation.email} was withdrawn.`, "success");
        await load();
      }),
    );
    return h(
      "li",
      { class: "card share-card", "data-invitation": invitation.id },
      h(
        "div",
        null,
        h("p", { class: "share-email" }, invitation.email),
        h("p", { class: "muted" }, `Invited ${formatDateTime(invitation.created_at)}`),
      ),
      withdraw,
    );
  };

  const load = async (): Promise<void> => {
    const [shares, invitations] = await Promise.all([
      get<Share[]>(base, { signal: ctx.signal }),
      get<Invitation[]>(invitationsBase, { signal: ctx.signal }),
    ]);
    list.removeAttribute("aria-busy");
    message.replaceChildren();
    list.replaceChildren(
      ...(shares.length ? shares.map(item) : [h("li", { class: "card empty" }, "Not shared with anyone.")]),
    );
    pendingList.replaceChildren(...invitations.map(invitationItem));
    pending.hidden = invitations.length === 0;
  };
  const failed = (error: unknown): void => {
    if (ctx.signal.aborted || error instanceof SignedOutError) return;
    list.removeAttribute("aria-busy");
    message.replaceChildren(errorBox(messageOf(error)));
  };

  const emailId = uid("share-email");
  const email = h("input", {
    id: emailId,
    name: "email",
    type: "email",
    required: true,
    autocomplete: "off",
    maxlength: 320,
  });
  const formMessage = h("div", { class: "form-message" });
  const form = h(
    "form",
    { class: "card add-form", novalidate: true, "aria-labelledby": "share-title" },
    h("h2", { id: "share-title" }, "Share read-only"),
    h(
      "p",
      { class: "muted" },
      "We send an invitation: once they accept it, they see live data, history, trips, alerts and trouble codes, and change nothing.",
    ),
    formMessage,
    h(
      "div",
      { class: "form-row" },
      h("div", { class: "field" }, h("label", { for: emailId }, "Their email"), email),
      h(
        "div",
        { class: "field field-submit" },
        h("button", { type: "submit", class: "button primary" }, icon("plus"), "Invite"),
      ),
    ),
  );
  form.addEventListener(
    "submit",
    act(async (event) => {
      event.preventDefault();
      formMessage.replaceChildren();
      const address = email.value.trim();
      if (!address.includes("@")) {
        formMessage.replaceChildren(errorBox("Enter their email address."));
        email.focus();
        return;
      }
      try {
        const sent = await api<InvitationSent>("POST", base, { body: { email: address } });
        email.value = "";
        toast(`Invitation sent to ${sent.email}: they see the vehicle once they accept it.`, "success");
        await load();
      } catch (error) {
        if (!(error instanceof ApiError) || error.status === 401) throw error;
        formMessage.replaceChildren(errorBox(messageOf(error)));
        email.focus();
      }
    }),
  );

  frame.body.append(
    message,
    h("section", { "aria-labelledby": "shares-title" }, h("h2", { id: "shares-title" }, "Shared with"), list),
    pending,
    form,
  );
  frame.vehicle
    .then((vehicle) => {
      if (!vehicle) return;
      if ((vehicle.role ?? "owner") !== "owner") {
        list.removeAttribute("aria-busy");
        frame.body.replaceChildren(errorBox("Only the vehicle's owner can share it."));
        return;
      }
      load().catch(failed);
    })
    .catch(() => undefined);
  return { title: "Sharing", el: frame.el };
}
