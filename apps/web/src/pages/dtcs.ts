import { h } from "../ui/dom";
import type { Page, PageContext } from "../router";
import { vehicleFrame, vehicleId } from "./vehicle-frame";

export function dtcsPage(ctx: PageContext): Page {
  const frame = vehicleFrame(ctx, vehicleId(ctx), "dtcs");
  frame.body.append(h("p", null, "Trouble codes"));
  return { title: "Trouble codes", el: frame.el };
}
