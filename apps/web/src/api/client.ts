import type { User } from "./types";

export interface FieldError {
  field: string;
  message: string;
}

/** An API failure with a message fit to show a person. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly fields: readonly FieldError[] = [],
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** The session ended (expired, signed out elsewhere): the app has already gone to sign-in. */
export class SignedOutError extends ApiError {
  constructor() {
    super(401, "Your session has ended. Sign in again.");
    this.name = "SignedOutError";
  }
}

type SignedOutHandler = () => void;
let signedOutHandler: SignedOutHandler = () => undefined;

export function onSignedOut(handler: SignedOutHandler): void {
  signedOutHandler = handler;
}

export function signedOut(): SignedOutError {
  signedOutHandler();
  return new SignedOutError();
}

const CSRF_COOKIE = "obd2_csrf";

export function csrfToken(): string {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(rest.join("="));
  }
  return "";
}

const FIELD_HINTS: Readonly<Record<string, string>> = {
  vin: "A VIN has 17 characters: digits and capital letters except I, O and Q.",
  name: "Give a name of 1 to 100 printable characters.",
  email: "Enter the email address of your account.",
  password: "Enter your password.",
};

function sentence(text: string): string {
  const trimmed = text.trim();
  if (!trimmed) return trimmed;
  const first = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

interface ErrorBody {
  detail?: unknown;
  errors?: Array<{ loc?: unknown[]; msg?: unknown }>;
}

function fieldErrors(body: ErrorBody): FieldError[] {
  const out: FieldError[] = [];
  for (const item of body.errors ?? []) {
    const loc = Array.isArray(item.loc) ? item.loc : [];
    const last: unknown = loc[loc.length - 1];
    const field = typeof last === "string" || typeof last === "number" ? String(last) : "";
    const hint = FIELD_HINTS[field];
    out.push({ field, message: hint ?? sentence(typeof item.msg === "string" ? item.msg : "invalid value") });
  }
  return out;
}

/** The message a person sees for a failed response. */
export function describeFailure(status: number, body: ErrorBody, requestId: string | null): string {
  const detail = typeof body.detail === "string" ? body.detail : "";
  if (status === 403 && detail.includes("X-CSRF-Token")) {
    return "This page's security token is out of date. Reload the page and try again.";
  }
  if (status === 422) {
    const first = fieldErrors(body)[0];
    if (first && first.field) return first.message;
    return detail ? sentence(detail.replace(/^invalid request: /, "")) : "The request was invalid.";
  }
  if (status === 413) return "That request is too large for the server.";
  if (status === 429) return sentence(detail || "Too many attempts; wait a moment and try again");
  if (status >= 500) {
    const reference = requestId ? ` (reference ${requestId})` : "";
    if (status === 502 || status === 504) {
      return `The server is not answering (${status}). Try again in a moment${reference}.`;
    }
    if (detail && detail !== "internal server error") return sentence(detail);
    return `The server hit an error (${status}). Try again; if it persists, check the server log${reference}.`;
  }
  return detail ? sentence(detail) : `The request failed (${status}).`;
}

export interface RequestOptions {
  body?: unknown;
  signal?: AbortSignal;
  /** A 401 is an answer to show (sign-in), not a session that ended. */
  allowUnauthorized?: boolean;
  /** Statuses the caller handles itself: the response is returned as is. */
  passStatuses?: readonly number[];
}

const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export async function send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (WRITE_METHODS.has(method)) headers["X-CSRF-Token"] = csrfToken();
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: options.body === undefined ? null : JSON.stringify(options.body),
      signal: options.signal ?? null,
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError(0, "Cannot reach the server. Check the connection and try again.");
  }
  if (response.ok || options.passStatuses?.includes(response.status)) return response;
  if (response.status === 401 && !options.allowUnauthorized) throw signedOut();
  let body: ErrorBody = {};
  try {
    body = (await response.json()) as ErrorBody;
  } catch {
    body = {};
  }
  throw new ApiError(
    response.status,
    describeFailure(response.status, body, response.headers.get("X-Request-ID")),
    fieldErrors(body),
  );
}

export async function api<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const response = await send(method, path, options);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export const get = <T>(path: string, options?: RequestOptions): Promise<T> => api<T>("GET", path, options);

/** The signed-in user, or null. */
export async function currentUser(): Promise<User | null> {
  const response = await send("GET", "/api/v1/auth/me", { passStatuses: [401] });
  if (response.status === 401) return null;
  return (await response.json()) as User;
}

export function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === "AbortError";
}
