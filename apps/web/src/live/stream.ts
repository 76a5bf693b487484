import { signedOut } from "../api/client";
import type { Sample } from "../api/types";
import { SseParser } from "./sse";

export type StreamState = "connecting" | "live" | "reconnecting";

export interface StreamHandlers {
  sample: (sample: Sample) => void;
  /** The server could not resume where we left off: samples in between are missing. */
  reset: () => void;
  state: (state: StreamState, detail: string) => void;
}

const MIN_RETRY_MS = 1000;
const MAX_RETRY_MS = 15_000;
// The server sends a comment at least every 10-15 s; silence past this means a dead link
// (a car driving out of coverage rarely closes its TCP connection cleanly).
const SILENCE_MS = 30_000;

function isSample(value: unknown): value is Sample {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v["ts"] === "number" && typeof v["pid"] === "string" && typeof v["value"] === "number";
}

/**
 * A vehicle's live samples over SSE, read with fetch so that every reconnection (after a network
 * drop, a server restart or a proxy error) sends Last-Event-ID and the server resumes with no gap.
 */
export class LiveStream {
  private readonly controller = new AbortController();
  private lastEventId = "";
  private failures = 0;
  private serverRetryMs = 2000;
  private wake: (() => void) | null = null;
  private readonly onOnline = (): void => this.wake?.();

  constructor(
    private readonly url: string,
    private readonly handlers: StreamHandlers,
  ) {}

  start(): void {
    window.addEventListener("online", this.onOnline);
    this.loop().catch(() => undefined);
  }

  stop(): void {
    window.removeEventListener("online", this.onOnline);
    this.controller.abort();
    this.wake?.();
  }

  private get stopped(): boolean {
    return this.controller.signal.aborted;
  }

  /** stop() may have run while the loop awaited (a method, so the check is not narrowed away). */
  private isStopped(): boolean {
    return this.stopped;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      this.handlers.state(this.failures === 0 && !this.lastEventId ? "connecting" : "reconnecting", "");
      let detail = "connection lost";
      try {
        const outcome = await this.connect();
        if (outcome === "signed-out") return;
        detail = "the server closed the stream";
      } catch (error) {
        if (this.isStopped()) return;
        detail = error instanceof Error && error.message ? error.message : "connection lost";
      }
      if (this.isStopped()) return;
      this.failures += 1;
      const delay = Math.min(
        MAX_RETRY_MS,
        Math.max(MIN_RETRY_MS, this.serverRetryMs) * 2 ** Math.min(this.failures - 1, 4),
      );
      this.handlers.state("reconnecting", `${detail}; retrying in ${Math.round(delay / 1000)} s`);
      await this.sleep(delay);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = window.setTimeout(done, ms);
      function done(): void {
        window.clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private async connect(): Promise<"closed" | "signed-out"> {
    const attempt = new AbortController();
    const abortAttempt = (): void => {
      attempt.abort();
    };
    this.controller.signal.addEventListener("abort", abortAttempt);
    let silence = 0;
    const watchdog = (): void => {
      window.clearTimeout(silence);
      silence = window.setTimeout(() => {
        attempt.abort(new Error("no data for 30 s"));
      }, SILENCE_MS);
    };
    try {
      const headers: Record<string, string> = { Accept: "text/event-stream" };
      if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
      watchdog();
      let response: Response;
      try {
        response = await fetch(this.url, {
          headers,
          credentials: "same-origin",
          cache: "no-store",
          signal: attempt.signal,
        });
      } catch (error) {
        if (attempt.signal.reason instanceof Error) throw attempt.signal.reason;
        throw error instanceof TypeError ? new Error("cannot reach the server") : error;
      }
      if (response.status === 401) {
        signedOut();
        return "signed-out";
      }
      if (!response.ok || !response.body) throw new Error(`the server answered ${response.status}`);
      this.failures = 0;
      this.handlers.state("live", "");
      const parser = new SseParser((event) => {
        this.lastEventId = event.lastEventId;
        if (event.type === "sample") {
          const parsed: unknown = JSON.parse(event.data);
          if (isSample(parsed)) this.handlers.sample(parsed);
        } else if (event.type === "reset") {
          this.handlers.reset();
        }
      });
      parser.lastEventId = this.lastEventId;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return "closed";
          watchdog();
          parser.feed(value);
          if (parser.retryMs !== null) this.serverRetryMs = parser.retryMs;
        }
      } catch (error) {
        if (attempt.signal.reason instanceof Error) throw attempt.signal.reason;
        throw error;
      } finally {
        reader.releaseLock();
      }
    } finally {
      window.clearTimeout(silence);
      this.controller.signal.removeEventListener("abort", abortAttempt);
      attempt.abort();
    }
  }
}
