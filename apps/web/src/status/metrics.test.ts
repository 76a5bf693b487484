import { describe, expect, it } from "vitest";
import { parseMetrics, total } from "./metrics";

const TEXT = `# HELP obd2_ingest_samples_total Samples received
# TYPE obd2_ingest_samples_total counter
obd2_ingest_samples_total{result="accepted"} 1234.0
obd2_ingest_samples_total{result="duplicate"} 5.0
obd2_ingest_samples_created{result="accepted"} 1.7e+09
obd2_stream_lag 3.0
obd2_live_streams_open{transport="sse"} 2.0
obd2_live_streams_open{transport="ws"} 1.0
obd2_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/a \\"b\\""} 7.0
garbage line
`;

describe("parseMetrics", () => {
  const samples = parseMetrics(TEXT);

  it("reads names, labels and values, skipping comments and junk", () => {
    expect(samples).toHaveLength(7);
    expect(samples[0]).toEqual({
      name: "obd2_ingest_samples_total",
      labels: { result: "accepted" },
      value: 1234,
    });
    expect(samples[6]?.labels["route"]).toBe('/a "b"');
  });

  it("sums a metric over matching labels", () => {
    expect(total(samples, "obd2_ingest_samples_total", { result: "accepted" })).toBe(1234);
    expect(total(samples, "obd2_live_streams_open")).toBe(3);
    expect(total(samples, "obd2_stream_lag")).toBe(3);
    expect(total(samples, "obd2_missing")).toBeNull();
  });
});
