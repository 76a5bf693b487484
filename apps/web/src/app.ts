import { csrfToken, currentUser, isAbort, onSignedOut, send } from "./api/client";
import type { User } from "./api/types";
import { h } from "./ui/dom";
import { icon } from "./ui/icons";
import { act, errorBox, messageOf, report } from "./ui/notify";
import { compile, match, safeNext, type Page, type PageContext, type RouteDef } from "./router";
import { currentTheme, setTheme } from "./theme";
import { loginPage } from "./pages/login";
import { vehiclesPage } from "./pages/vehicles";
import { livePage } from "./pages/live";
import { historyPage } from "./pages/history";
import { devicesPage } from "./pages/devices";
import { dtcsPage } from "./pages/dtcs";
import { tripPage, tripsPage } from "./pages/trips";
import { alertsPage } from "./pages/alerts";
import { sharingPage } from "./pages/sharing";
import { importPage } from "./pages/imports";
import { statusPage } from "./pages/status";
import { settingsPage } from "./pages/settings";
import { forgetUnits } from "./units";
import { notFoundPage } from "./pages/not-found";

const APP_NAME = "OBD2 Dashboard";

const ROUTES: readonly RouteDef[] = [
  { path: "/vehicles", page: vehiclesPage },
  { path: "/vehicles/:id", page: livePage },
  { path: "/vehicles/:id/history", page: historyPage },
  { path: "/vehicles/:id/devices", page: devicesPage },
  { path: "/vehicles/:id/dtcs", page: dtcsPage },
  { path: "/vehicles/:id/trips", page: tripsPage },
  { path: "/vehicles/:id/trips/:trip", page: tripPage },
  { path: "/vehicles/:id/alerts", page: alertsPage },
  { path: "/vehicles/:id/sharing", page: sharingPage },
  { path: "/vehicles/:id/import", page: importPage },
  { path: "/status", page: statusPage },
  { path: "/settings", page: settingsPage },
];
const compiled = compile(ROUTES);

export class App {
  private user: User | null = null;
  private pendingUser: Promise<void> | null = null;
  private page: Page | null = null;
  private controller: AbortController | null = null;
  private rendered = 0;
  private readonly main: HTMLElement;
  private readonly nav: HTMLElement;
  private readonly account: HTMLElement;
  private readonly themeButton: HTMLButtonElement;

  constructor(private readonly root: HTMLElement) {
    this.main = h("main", { id: "main", tabindex: "-1" });
    this.nav = h("nav", { class: "site-nav", "aria-label": "Main" });
    this.account = h("div", { class: "account" });
    this.themeButton = h("button", { type: "button", class: "icon-button theme-toggle" });
    this.themeButton.addEventListener("click", () => {
      setTheme(currentTheme() === "dark" ? "light" : "dark");
      this.paintThemeButton();
    });
    this.paintThemeButton();
  }

  start(): void {
    const header = h(
      "header",
      { class: "site-header" },
      h(
        "div",
        { class: "header-inner" },
        h("a", { class: "brand", href: "/vehicles" }, icon("gauge", "icon brand-icon"), APP_NAME),
        this.nav,
        h("div", { class: "header-tools" }, this.themeButton, this.account),
      ),
    );
    this.root.replaceChildren(h("a", { class: "skip-link", href: "#main" }, "Skip to content"), header, this.main);
    document.addEventListener("click", (event) => {
      this.interceptLink(event);
    });
    window.addEventListener("popstate", () => {
      this.route();
    });
    onSignedOut(() => {
      this.sessionEnded();
    });
    this.route();
  }

  navigate(path: string, options: { replace?: boolean } = {}): void {
    if (options.replace) history.replaceState(null, "", path);
    else history.pushState(null, "", path);
    this.route();
  }

  private paintThemeButton(): void {
    const dark = currentTheme() === "dark";
    this.themeButton.replaceChildren(icon(dark ? "sun" : "moon"));
    const label = dark ? "Switch to light theme" : "Switch to dark theme";
    this.themeButton.setAttribute("aria-label", label);
    this.themeButton.title = label;
  }

  private interceptLink(event: MouseEvent): void {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const target = event.target instanceof Element ? event.target.closest("a") : null;
    if (!target || target.target || target.hasAttribute("download")) return;
    const url = new URL(target.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
    if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
    event.preventDefault();
    this.navigate(url.pathname + url.search);
  }

  private sessionEnded(): void {
    forgetUnits();
    if (location.pathname === "/login") return;
    this.user = null;
    const here = location.pathname + location.search;
    this.navigate(`/login?expired=1&next=${encodeURIComponent(here)}`, { replace: true });
  }

  private signedIn = (user: User, next: string): void => {
    // Whoever signs in reads figures in their own units, not the previous person's.
    forgetUnits();
    this.user = user;
    this.navigate(safeNext(next), { replace: true });
  };

  private async signOut(): Promise<void> {
    try {
      await send("POST", "/api/v1/auth/logout", { passStatuses: [401, 403] });
    } finally {
      this.user = null;
      forgetUnits();
      this.navigate("/login", { replace: true });
    }
  }

  private paintChrome(): void {
    const path = location.pathname;
    const links: Array<[string, string, boolean]> = [
      ["/vehicles", "Vehicles", path === "/vehicles" || path.startsWith("/vehicles/")],
      ["/status", "Status", path === "/status"],
      ["/settings", "Settings", path === "/settings"],
    ];
    this.nav.replaceChildren(
      ...(this.user || this.pendingUser
        ? links.map(([href, label, active]) => h("a", { href, "aria-current": active ? "page" : null }, label))
        : []),
    );
    if (!this.user && !this.pendingUser) {
      this.account.replaceChildren();
      return;
    }
    const out = h(
      "button",
      { type: "button", class: "icon-button", "aria-label": "Sign out", title: "Sign out" },
      icon("logout"),
    );
    out.addEventListener(
      "click",
      act(() => this.signOut()),
    );
    this.account.replaceChildren(
      this.user ? h("span", { class: "account-email", title: this.user.email }, this.user.email) : "",
      out,
    );
  }

  private route(): void {
    try {
      this.routeNow();
    } catch (error) {
      report(error);
    }
  }

  private routeNow(): void {
    this.controller?.abort();
    this.page?.dispose?.();
    this.page = null;
    const controller = new AbortController();
    this.controller = controller;
    const path = location.pathname;
    const query = new URLSearchParams(location.search);

    if (path === "/login") {
      this.user = null;
      this.paintChrome();
      this.show(loginPage({ query, onSignedIn: this.signedIn }));
      return;
    }
    if (!this.user) {
      const toLogin = (): void => {
        const here = path === "/" ? "" : `?next=${encodeURIComponent(path + location.search)}`;
        this.navigate(`/login${here}`, { replace: true });
      };
      if (!csrfToken()) {
        // No sign-in cookie at all: no need to ask the server.
        toLogin();
        return;
      }
      // Likely signed in: show the page at once and learn who we are alongside; if the session
      // is gone after all, this or the page's own requests lead to sign-in.
      this.whoAmI(controller.signal, toLogin);
    }
    if (path === "/") {
      this.navigate("/vehicles", { replace: true });
      return;
    }
    this.paintChrome();
    const found = match(compiled, path);
    const ctx: PageContext = {
      params: found?.params ?? {},
      query,
      signal: controller.signal,
      navigate: (to, options) => {
        this.navigate(to, options);
      },
      setQuery: (next, options) => {
        const search = next.toString();
        const url = search ? `${location.pathname}?${search}` : location.pathname;
        if (options?.push) history.pushState(null, "", url);
        else history.replaceState(null, "", url);
      },
    };
    this.show((found?.page ?? notFoundPage)(ctx));
  }

  private whoAmI(signal: AbortSignal, toLogin: () => void): void {
    if (this.pendingUser) return;
    this.pendingUser = currentUser()
      .then((user) => {
        if (user) {
          this.user = user;
          this.paintChrome();
        } else if (!signal.aborted && location.pathname !== "/login") {
          toLogin();
        }
      })
      .catch((error: unknown) => {
        if (isAbort(error)) return;
        this.paintChrome();
        this.show({
          title: "Cannot connect",
          el: h("section", { class: "page narrow" }, h("h1", null, "Cannot connect"), errorBox(messageOf(error))),
        });
      })
      .finally(() => {
        this.pendingUser = null;
      });
  }

  private show(page: Page): void {
    if (this.page !== page) this.page?.dispose?.();
    this.page = page;
    document.title = `${page.title} · ${APP_NAME}`;
    this.main.replaceChildren(page.el);
    this.rendered += 1;
    // After the first page, move focus to the new content so keyboard and screen-reader users
    // start there, as they would after a full page load.
    if (this.rendered > 1) this.main.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
}
