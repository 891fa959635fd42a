import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { layout, toGraph, triggerId, type Spec } from "./graph";

const samples = fileURLToPath(new URL("../../../config/samples/", import.meta.url));

function campaigns(): { name: string; spec: Spec }[] {
  const out: { name: string; spec: Spec }[] = [];
  for (const f of readdirSync(samples).filter((f) => f.endsWith(".yaml"))) {
    for (const d of parseAllDocuments(readFileSync(join(samples, f), "utf8"))) {
      const o = d.toJS();
      if (o?.kind === "Campaign") out.push({ name: o.metadata.name, spec: o.spec });
    }
  }
  return out;
}

describe("graph of a campaign's steps", () => {
  it("draws every sample campaign: the trigger and each step, every edge between nodes, each laid out", () => {
    const all = campaigns();
    expect(all.length).toBeGreaterThan(0);
    for (const { name, spec } of all) {
      const { nodes, edges } = toGraph(spec);
      expect(nodes.map((n) => n.id), name).toEqual([triggerId, ...(spec.steps ?? []).map((s) => s.name)]);
      const ids = new Set(nodes.map((n) => n.id));
      for (const e of edges) {
        expect(ids.has(e.source) && ids.has(e.target), `${name}: ${e.id}`).toBe(true);
      }
      const pos = layout(nodes, edges);
      expect(pos.size).toBe(nodes.length);
      for (const p of pos.values()) expect(Number.isFinite(p.x) && Number.isFinite(p.y)).toBe(true);
    }
  });

  it("follows the engine's rules for each kind of step", () => {
    const { edges } = toGraph({
      trigger: { event: { type: "player.registered" } },
      steps: [
        { name: "welcome", send: { content: "welcome" } },
        { name: "first-bet", waitFor: { event: "bet.placed", timeout: "24h", onTimeout: "nudge" } },
        { name: "vip", branch: { cases: [{ when: "player.vipLevel >= 3", next: "bonus" }], otherwise: "done" } },
        { name: "nudge", delay: { duration: "1h" }, next: "done" },
        { name: "bonus", grant: { reward: "spins", onRefused: "done" } },
        { name: "done", exit: {} },
      ],
    });
    expect(edges.map((e) => `${e.source}>${e.target}${e.label ? ` [${e.label}]` : ""}`)).toEqual([
      `${triggerId}>welcome`,
      "welcome>first-bet",
      "first-bet>vip [bet.placed]",
      "first-bet>nudge [timeout]",
      "vip>bonus [player.vipLevel >= 3]",
      "vip>done [otherwise]",
      "nudge>done",
      "bonus>done",
      "bonus>done [refused]",
    ]);
  });
});
