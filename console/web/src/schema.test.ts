import { describe, expect, it } from "vitest";
import { at, campaignSchema, fieldName, scalar } from "./schema";

describe("the Campaign schema", () => {
  it("is the CRD's, with the fields the builder edits", () => {
    const spec = at(campaignSchema, ["spec"])!;
    for (const k of ["trigger", "audience", "steps", "rewards", "experiment", "budget", "rollout"]) expect(spec.properties?.[k], k).toBeDefined();
    const step = at(campaignSchema, ["spec", "steps", 0])!;
    for (const k of ["send", "delay", "waitFor", "branch", "grant", "exit", "next"]) expect(step.properties?.[k], k).toBeDefined();
    expect(at(campaignSchema, ["spec", "steps", 0, "branch", "cases", 0, "when"])?.type).toBe("string");
    expect(at(campaignSchema, ["spec", "nope"])).toBeUndefined();
  });
  it("names fields as the API server does and reads typed values", () => {
    expect(fieldName(["spec", "steps", 1, "branch", "cases", 0, "when"])).toBe("spec.steps[1].branch.cases[0].when");
    expect(scalar({ type: "integer" }, "42")).toBe(42);
    expect(scalar({ type: "string" }, " ")).toBeUndefined();
    expect(scalar({ "x-kubernetes-int-or-string": true }, "7")).toBe(7);
    expect(scalar({ type: "string" }, "72h")).toBe("72h");
  });
});
