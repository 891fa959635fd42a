import { describe, expect, it } from "vitest";
import { fromCEL, toCEL } from "./segrule";

describe("segment rule builder", () => {
  it("writes conditions as CEL and reads them back", () => {
    const conds = [
      { field: "country", op: "==", value: "AZ" },
      { field: "vipLevel", op: ">=", value: "3" },
      { field: "ltv", op: ">", value: "500" },
      { field: "hasEmail", op: "is", value: "" },
      { field: "selfExcluded", op: "not", value: "" },
    ];
    const cel = toCEL(conds);
    expect(cel).toBe('player.country == "AZ" && player.vipLevel >= 3 && player.ltv > 500.0 && player.hasEmail && !player.selfExcluded');
    expect(fromCEL(cel)).toEqual(conds.map((c) => (c.field === "ltv" ? { ...c, value: "500.0" } : c)));
    expect(toCEL([])).toBe("true");
    expect(fromCEL("true")).toEqual([]);
  });
  it("leaves other rules to the CEL tab", () => {
    expect(fromCEL('player.country == "AZ" || player.vipLevel > 3')).toBeNull();
    expect(fromCEL("player.attrs.vip == \"1\"")).toBeNull();
    expect(fromCEL("player.vipLevel >= player.betCount")).toBeNull();
    expect(fromCEL('player.rfm.segment == "atRisk"')).toEqual([{ field: "rfm.segment", op: "==", value: "atRisk" }]);
  });
  it("quotes what a person types", () => {
    const cel = toCEL([{ field: "country", op: "==", value: 'A" || true || "' }]);
    expect(cel).toBe('player.country == "A\\" || true || \\""');
    expect(fromCEL(cel)).toBeNull(); // not a plain list any more: shown as CEL, never misread
  });
});
