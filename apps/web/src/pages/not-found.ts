import { h } from "../ui/dom";
import type { Page } from "../router";

export function notFoundPage(): Page {
  return {
    title: "Not found",
    el: h(
      "section",
      { class: "page narrow" },
      h("h1", null, "Page not found"),
      h("p", null, "There is nothing at this address."),
      h("p", null, h("a", { href: "/vehicles", class: "button primary" }, "Go to your vehicles")),
    ),
  };
}
