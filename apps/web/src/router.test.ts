import { describe, expect, it } from "vitest";
import { compile, match, safeNext } from "./router";
import { bridgeCommand } from "./pages/bridge-command";

describe("router", () => {
  const page = () => ({ title: "", el: {} as HTMLElement });
  const routes = compile([
    { path: "/vehicles", page },
    { path: "/vehicles/:id/history", page },
  ]);

  it("matches paths and decodes parameters", () => {
    expect(match(routes, "/vehicles/12/history")?.params).toEqual({ id: "12" });
    expect(match(routes, "/vehicles/")?.params).toEqual({});
    expect(match(routes, "/vehicles/12/historyx")).toBeNull();
  });

  it("only goes back to paths inside the app after sign-in", () => {
    expect(safeNext("/vehicles/3?range=1h")).toBe("/vehicles/3?range=1h");
    for (const bad of [null, "", "https://evil.example", "//evil.example", "/\\evil", "/login?next=/x"]) {
      expect(safeNext(bad)).toBe("/");
    }
  });
});

describe("bridgeCommand", () => {
  it("is the exact line to paste, quoted only where the shell needs it", () => {
    expect(bridgeCommand("/dev/ttyUSB0", "https://obd.example.org", "obd2d_abc-DEF_1")).toBe(
      "obd2-bridge run --adapter /dev/ttyUSB0 --api https://obd.example.org --token obd2d_abc-DEF_1",
    );
    expect(bridgeCommand("/dev/my port", "http://h:8000", "t")).toBe(
      "obd2-bridge run --adapter '/dev/my port' --api http://h:8000 --token t",
    );
    expect(bridgeCommand("it's", "http://h", "t")).toContain(`'it'\\''s'`);
  });
});
