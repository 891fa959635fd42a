import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { addCase, addStep, connect, deleteStep, disconnect, renameStep, setField, stepOfField } from "./flowedit";
import { toGraph, type Spec } from "./graph";
import type { Handle } from "./flowedit";

const samples = fileURLToPath(new URL("../../../config/samples/", import.meta.url));

function sampleTexts(): { name: string; text: string }[] {
  const out: { name: string; text: string }[] = [];
  for (const f of readdirSync(samples).filter((f) => f.endsWith(".yaml")))
    for (const d of parseAllDocuments(readFileSync(join(samples, f), "utf8"))) {
      const o = d.toJS();
      if (o?.kind === "Campaign") out.push({ name: o.metadata.name, text: d.toString() });
    }
  return out;
}

const base = `apiVersion: crm.croupier.dev/v1alpha1
kind: Campaign
metadata:
  name: t
spec:
  # the entry
  trigger:
    event: {type: player.registered}
  steps:
    - name: welcome
      send: {content: welcome}
  contents:
    - name: welcome
      messages: []
`;

const spec = (y: string) => (parse(y) as { spec: Spec }).spec;

describe("builder", () => {
  it("builds a two-branch campaign and keeps comments", () => {
    let y = base;
    let r = addStep(y, "branch");
    expect(r.name).toBe("branch-1");
    y = r.text;
    r = addStep(y, "send");
    y = r.text;
    const a = r.name;
    r = addStep(y, "exit");
    y = r.text;
    y = connect(y, "branch-1", "case-0", a);
    y = setField(y, ["spec", "steps", 1, "branch", "cases", 0, "when"], "player.betCount > 0");
    y = connect(y, "branch-1", "otherwise", "exit-1");
    y = connect(y, a, "next", "exit-1");
    expect(y).toContain("# the entry");
    const g = toGraph(spec(y));
    expect(g.edges.map((e) => `${e.source}>${e.target}`).sort()).toEqual(["(trigger)>welcome", "branch-1>exit-1", "branch-1>send-1", "send-1>exit-1", "welcome>branch-1"].sort());
    expect(spec(y).steps![2].send!.content).toBe("welcome");

    y = addCase(y, "branch-1");
    expect(spec(y).steps![1].branch!.cases).toHaveLength(2);
    y = renameStep(y, "send-1", "upsell");
    expect(spec(y).steps![1].branch!.cases[0].next).toBe("upsell");
    y = deleteStep(y, "exit-1");
    const s = spec(y);
    expect(s.steps!.map((x) => x.name)).toEqual(["welcome", "branch-1", "upsell"]);
    expect(s.steps![1].branch!.otherwise).toBeUndefined();
    expect(s.steps![2].next).toBeUndefined();
    y = disconnect(y, "branch-1", "case-0");
    expect(spec(y).steps![1].branch!.cases[0].next).toBe("");
    expect(() => connect(y, "branch-1", "case-5", "welcome")).toThrow();
    const withNext = setField(y, ["spec", "steps", 0, "next"], "upsell");
    expect(spec(withNext).steps![0].next).toBe("upsell");
    expect(spec(setField(withNext, ["spec", "steps", 0, "next"], "")).steps![0].next).toBeUndefined();
  });

  it("finds the step a cause is about", () => {
    const s = spec(base).steps!;
    expect(stepOfField("spec.steps[0].send.content", s)).toBe("welcome");
    expect(stepOfField("spec.steps[welcome].branch.cases[0].when", s)).toBe("welcome");
    expect(stepOfField("spec.steps[7].x", s)).toBe("");
    expect(stepOfField("spec.priority", s)).toBe("");
  });
});

describe("graph <-> spec over every sample", () => {
  it("re-drawing each edge the graph shows, and adding then deleting a step, leaves the spec as it was", () => {
    const all = sampleTexts();
    expect(all.length).toBeGreaterThan(5);
    for (const { name, text } of all) {
      const before = spec(text);
      let y = text;
      for (const e of toGraph(before).edges.filter((e) => !e.implicit && e.source !== "(trigger)")) y = connect(y, e.source, e.handle as Handle, e.target);
      expect(spec(y), name).toEqual(before);
      expect(toGraph(spec(y)), name).toEqual(toGraph(before));
      const added = addStep(y, "delay");
      expect(spec(deleteStep(added.text, added.name)), name).toEqual(before);
    }
  });
});
