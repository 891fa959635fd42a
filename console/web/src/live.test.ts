import { describe, expect, it } from "vitest";
import type { Row } from "./api";
import { apply } from "./live";
import { suppressedTotals } from "./format";

const row = (name: string, delivered: number, suppressed: Record<string, number> = {}): Row => ({
  name,
  generation: 1,
  steps: 1,
  status: { counters: { delivered, suppressed } },
});

describe("live rows", () => {
  it("starts from a snapshot and applies changes and deletions", () => {
    let rows = apply([], { kind: "snapshot", rows: [row("b", 1), row("a", 2)] });
    expect(rows.map((r) => r.name)).toEqual(["a", "b"]);
    rows = apply(rows, { kind: "upsert", rows: [row("b", 5), row("c", 0)] });
    expect(rows.map((r) => [r.name, r.status.counters?.delivered])).toEqual([
      ["a", 2],
      ["b", 5],
      ["c", 0],
    ]);
    rows = apply(rows, { kind: "delete", name: "a" });
    expect(rows.map((r) => r.name)).toEqual(["b", "c"]);
  });
  it("sums the reasons for not sending over campaigns, largest first", () => {
    expect(suppressedTotals([row("a", 0, { QuietHours: 3, Consent: 1 }), row("b", 0, { Consent: 4 })])).toEqual([
      ["Consent", 5],
      ["QuietHours", 3],
    ]);
  });
});
