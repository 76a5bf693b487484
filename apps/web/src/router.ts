export interface Page {
  title: string;
  el: HTMLElement;
  dispose?: () => void;
}

export interface PageContext {
  params: Readonly<Record<string, string>>;
  query: URLSearchParams;
  /** Aborted when the person leaves the page: pass it to fetches, stop timers with it. */
  signal: AbortSignal;
  navigate: (path: string, options?: { replace?: boolean }) => void;
  /** Puts state in the URL without leaving the page (push: a new history entry). */
  setQuery: (query: URLSearchParams, options?: { push?: boolean }) => void;
}

export type PageFactory = (ctx: PageContext) => Page;

export interface RouteDef {
  path: string;
  page: PageFactory;
}

interface CompiledRoute {
  pattern: RegExp;
  keys: string[];
  page: PageFactory;
}

export function compile(routes: readonly RouteDef[]): CompiledRoute[] {
  return routes.map(({ path, page }) => {
    const keys: string[] = [];
    const source = path.replace(/:([a-z]+)/g, (_, key: string) => {
      keys.push(key);
      return "([^/]+)";
    });
    return { pattern: new RegExp(`^${source}/?$`), keys, page };
  });
}

export function match(
  routes: readonly CompiledRoute[],
  pathname: string,
): { page: PageFactory; params: Record<string, string> } | null {
  for (const route of routes) {
    const found = route.pattern.exec(pathname);
    if (!found) continue;
    const params: Record<string, string> = {};
    route.keys.forEach((key, i) => {
      params[key] = decodeURIComponent(found[i + 1] ?? "");
    });
    return { page: route.page, params };
  }
  return null;
}

/** A path inside this app to go back to after sign-in; anything else becomes "/". */
export function safeNext(next: string | null): string {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return "/";
  if (next.startsWith("/login")) return "/";
  return next;
}
