import { SignedOutError, api, get } from "../api/client";
import type { MyInvitation, Vehicle } from "../api/types";
import { formatDateTime } from "../format";
import { h } from "../ui/dom";
import { act, errorBox, messageOf, toast } from "../ui/notify";
import type { PageContext } from "../router";

/**
 * Vehicles others invite the signed-in user to watch: nothing is shared until they accept.
 * Hidden while there are none. `changed` runs after an answer (the vehicle list then grows).
 */
export function invitationsPanel(
  ctx: PageContext,
  changed: () => Promise<void>,
): { el: HTMLElement; refresh: () => void } {
  const list = h("ul", { class: "share-list" });
  const message = h("div");
  const el = h(
    "section",
    { class: "invitations", "aria-labelledby": "invitations-title", hidden: true },
    h("h2", { id: "invitations-title" }, "Invitations"),
    h("p", { class: "muted" }, "Accept to see the vehicle read-only; nothing is shared until you do."),
    message,
    list,
  );

  const item = (invitation: MyInvitation): HTMLElement => {
    const accept = h(
      "button",
      { type: "button", class: "button small primary", "aria-label": `Accept ${invitation.vehicle_name}` },
      "Accept",
    );
    const decline = h(
      "button",
      { type: "button", class: "button small ghost", "aria-label": `Decline ${invitation.vehicle_name}` },
      "Decline",
    );
    accept.addEventListener(
      "click",
      act(async () => {
        const vehicle = await api<Vehicle>("POST", `/api/v1/invitations/${invitation.id}/accept`);
        toast(`You now see ${vehicle.name}, read-only.`, "success");
        await load();
        await changed();
      }),
    );
    decline.addEventListener(
      "click",
      act(async () => {
        await api<undefined>("POST", `/api/v1/invitations/${invitation.id}/decline`);
        toast(`Declined ${invitation.vehicle_name}.`, "success");
        await load();
      }),
    );
    return h(
      "li",
      { class: "card share-card", "data-invitation": invitation.id },
      h(
        "div",
        null,
        h("p", { class: "share-email" }, invitation.vehicle_name),
        h("p", { class: "muted" }, `From ${invitation.invited_by}, ${formatDateTime(invitation.created_at)}`),
      ),
      h("div", { class: "share-actions" }, accept, decline),
    );
  };

  const load = async (): Promise<void> => {
    const invitations = await get<MyInvitation[]>("/api/v1/invitations", { signal: ctx.signal });
    message.replaceChildren();
    list.replaceChildren(...invitations.map(item));
    el.hidden = invitations.length === 0;
  };
  const refresh = (): void => {
    load().catch((error: unknown) => {
      if (ctx.signal.aborted || error instanceof SignedOutError) return;
      message.replaceChildren(errorBox(messageOf(error)));
    });
  };
  return { el, refresh };
}
