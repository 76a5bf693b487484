import { describe, expect, it } from "vitest";
import { SseParser, type SseEvent } from "./sse";

function parse(...chunks: string[]): { events: SseEvent[]; parser: SseParser } {
  const events: SseEvent[] = [];
  const parser = new SseParser((e) => events.push(e));
  for (const chunk of chunks) parser.feed(chunk);
  return { events, parser };
}

describe("SseParser", () => {
  it("dispatches typed events with their ids and skips comments", () => {
    const { events } = parse(
      ": connected\nretry: 2000\n\n",
      'id: 1-0.0\nevent: sample\ndata: {"pid":"RPM"}\n\n',
      ": keepalive\n\n",
      "event: reset\ndata: {}\n\n",
    );
    expect(events).toEqual([
      { type: "sample", data: '{"pid":"RPM"}', lastEventId: "1-0.0" },
      { type: "reset", data: "{}", lastEventId: "1-0.0" },
    ]);
  });

  it("joins events split anywhere across chunks, whatever the line endings", () => {
    const text = "id: 7-1.2\r\nevent: sample\r\ndata: a\r\ndata: b\r\n\r\nevent: sample\rdata: c\r\r";
    const whole = parse(text).events;
    for (let cut = 1; cut < text.length; cut++) {
      expect(parse(text.slice(0, cut), text.slice(cut)).events).toEqual(whole);
    }
    expect(whole).toEqual([
      { type: "sample", data: "a\nb", lastEventId: "7-1.2" },
      { type: "sample", data: "c", lastEventId: "7-1.2" },
    ]);
  });

  it("keeps the server's retry and ignores an event without data", () => {
    const { events, parser } = parse("retry: 1500\nevent: sample\n\n");
    expect(events).toEqual([]);
    expect(parser.retryMs).toBe(1500);
  });
});
