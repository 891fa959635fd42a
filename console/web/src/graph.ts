// The graph of a Campaign's spec.steps, as the flow engine walks them
// (dispatcher/flow/engine.go): a step goes to its `next`, else to the step after it; a
// branch goes to the first case that holds, else `otherwise`, else the flow ends; a
// waitFor goes on when its event arrives and to `onTimeout` when it times out; a grant goes
// to `onRefused` when refused; exit ends. The layout is computed, never stored.
import dagre from "@dagrejs/dagre";

export type StepKind = "send" | "delay" | "waitFor" | "branch" | "grant" | "exit";

export interface Step {
  name: string;
  next?: string;
  send?: { content: string; channels?: string[] };
  delay?: { duration: string };
  waitFor?: { event: string; condition?: string; timeout: string; onTimeout?: string };
  branch?: { cases: { when: string; next: string }[]; otherwise?: string };
  grant?: { reward: string; onRefused?: string };
  exit?: Record<string, never>;
}

export interface Spec {
  trigger?: { event?: { type: string }; schedule?: { cron: string; timeZone?: string } };
  steps?: Step[];
}

export interface GraphNode {
  id: string;
  kind: StepKind | "trigger";
  label: string;
  detail: string;
}

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  label?: string;
  // handle is the source's outlet (next, case-N, otherwise, timeout, refused); implicit
  // edges are the walk on to the following step, set by no field.
  handle: string;
  implicit?: boolean;
}

export const triggerId = "(trigger)";

export function kindOf(s: Step): StepKind {
  for (const k of ["send", "delay", "waitFor", "branch", "grant", "exit"] as const) if (s[k] !== undefined) return k;
  return "exit";
}

function detail(s: Step): string {
  switch (kindOf(s)) {
    case "send":
      return `${s.send!.content}${s.send!.channels?.length ? ` (${s.send!.channels.join(", ")})` : ""}`;
    case "delay":
      return s.delay!.duration;
    case "waitFor":
      return `${s.waitFor!.event} ≤ ${s.waitFor!.timeout}`;
    case "branch":
      return `${(s.branch!.cases ?? []).length} case(s)`;
    case "grant":
      return s.grant!.reward;
    case "exit":
      return "";
  }
}

// toGraph maps a spec to nodes (the trigger, then each step in order) and edges.
export function toGraph(spec: Spec): { nodes: GraphNode[]; edges: GraphEdge[] } {
  const steps = spec.steps ?? [];
  const trig = spec.trigger?.event ? spec.trigger.event.type : spec.trigger?.schedule ? `${spec.trigger.schedule.cron} ${spec.trigger.schedule.timeZone ?? ""}`.trim() : "";
  const nodes: GraphNode[] = [{ id: triggerId, kind: "trigger", label: "trigger", detail: trig }];
  const edges: GraphEdge[] = [];
  const edge = (source: string, target: string | undefined, handle: string, label?: string, implicit?: boolean) => {
    if (!target) return;
    edges.push({ id: `${source}->${target}:${handle}`, source, target, handle, ...(label ? { label } : {}), ...(implicit ? { implicit } : {}) });
  };
  const after = (i: number, handle = "next", label?: string) => edge(steps[i].name, steps[i].next ?? steps[i + 1]?.name, handle, label, steps[i].next === undefined);
  if (steps.length > 0) edge(triggerId, steps[0].name, "next", undefined, true);
  steps.forEach((s, i) => {
    const kind = kindOf(s);
    nodes.push({ id: s.name, kind, label: s.name, detail: detail(s) });
    switch (kind) {
      case "branch":
        (s.branch!.cases ?? []).forEach((c, k) => edge(s.name, c.next, `case-${k}`, c.when));
        edge(s.name, s.branch!.otherwise, "otherwise", "otherwise");
        break;
      case "waitFor":
        after(i, "next", s.waitFor!.event);
        edge(s.name, s.waitFor!.onTimeout, "timeout", "timeout");
        break;
      case "grant":
        after(i);
        edge(s.name, s.grant!.onRefused, "refused", "refused");
        break;
      case "exit":
        break;
      default:
        after(i);
    }
  });
  return { nodes, edges };
}

// layout places the nodes top to bottom with dagre.
export function layout(nodes: GraphNode[], edges: GraphEdge[], width = 220, height = 64): Map<string, { x: number; y: number }> {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "TB", nodesep: 40, ranksep: 56 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { width, height });
  for (const e of edges) if (e.source !== e.target) g.setEdge(e.source, e.target);
  dagre.layout(g);
  const out = new Map<string, { x: number; y: number }>();
  for (const n of nodes) {
    const p = g.node(n.id);
    out.set(n.id, { x: p.x - width / 2, y: p.y - height / 2 });
  }
  return out;
}
