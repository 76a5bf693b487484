/** One Server-Sent Event as the HTML spec's parser dispatches it. */
export interface SseEvent {
  type: string;
  data: string;
  /** The last event id seen on the stream so far (sent back as Last-Event-ID). */
  lastEventId: string;
}

/**
 * An incremental text/event-stream parser: feed it decoded chunks, it calls back per event.
 * Comments (": keepalive") count as activity but dispatch nothing.
 */
export class SseParser {
  private buffer = "";
  private type = "";
  private data: string[] = [];
  private pendingCR = false;
  lastEventId = "";
  retryMs: number | null = null;

  constructor(private readonly onEvent: (event: SseEvent) => void) {}

  feed(chunk: string): void {
    let text = chunk;
    if (this.pendingCR) {
      // A CR at the end of the previous chunk already ended its line; a LF right after it
      // belongs to that same line ending.
      if (text.startsWith("\n")) text = text.slice(1);
      this.pendingCR = false;
    }
    this.buffer += text;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const ch = this.buffer.charCodeAt(i);
      if (ch !== 10 && ch !== 13) continue;
      this.line(this.buffer.slice(start, i));
      if (ch === 13) {
        if (i + 1 < this.buffer.length) {
          if (this.buffer.charCodeAt(i + 1) === 10) i++;
        } else {
          this.pendingCR = true;
        }
      }
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
  }

  private line(line: string): void {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.type = value;
        break;
      case "data":
        this.data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break;
    }
  }

  private dispatch(): void {
    if (this.data.length === 0) {
      this.type = "";
      return;
    }
    const event: SseEvent = {
      type: this.type || "message",
      data: this.data.join("\n"),
      lastEventId: this.lastEventId,
    };
    this.type = "";
    this.data = [];
    this.onEvent(event);
  }
}
