// The builder's edits of a Campaign: each takes the YAML text and gives the new text,
// editing the document's nodes (comments and the rest kept), so the YAML tab, the graph
// and what is saved are always the same thing.
import { parseDocument, isMap, isSeq, type Document } from "yaml";
import { kindOf, type Step, type StepKind } from "./graph";

export const kinds: StepKind[] = ["send", "delay", "waitFor", "branch", "grant", "exit"];

// A source handle of a step: where an outgoing edge starts, and the field it sets.
export type Handle = "next" | `case-${number}` | "otherwise" | "timeout" | "refused";

export function handlesOf(s: Step): { id: Handle; label: string }[] {
  switch (kindOf(s)) {
    case "branch":
      return [...(s.branch?.cases ?? []).map((c, i) => ({ id: `case-${i}` as Handle, label: c.when || `case ${i + 1}` })), { id: "otherwise", label: "otherwise" }];
    case "waitFor":
      return [
        { id: "next", label: s.waitFor?.event ?? "event" },
        { id: "timeout", label: "timeout" },
      ];
    case "grant":
      return [
        { id: "next", label: "" },
        { id: "refused", label: "refused" },
      ];
    case "exit":
      return [];
    default:
      return [{ id: "next", label: "" }];
  }
}

function edit(text: string, f: (doc: Document) => void): string {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new Error(doc.errors[0].message);
  f(doc);
  return doc.toString();
}

function steps(doc: Document): Step[] {
  return ((doc.toJS() as { spec?: { steps?: Step[] } })?.spec?.steps ?? []) as Step[];
}

// newStep is what a step of kind starts as: the smallest thing the API server accepts
// except what the marketer must choose (left empty, so the check names it on the node).
export function newStep(kind: StepKind, name: string, contents: string[]): Record<string, unknown> {
  switch (kind) {
    case "send":
      return { name, send: { content: contents[0] ?? "" } };
    case "delay":
      return { name, delay: { duration: "24h" } };
    case "waitFor":
      return { name, waitFor: { event: "deposit.completed", timeout: "72h" } };
    case "branch":
      return { name, branch: { cases: [{ when: "", next: "" }] } };
    case "grant":
      return { name, grant: { reward: "" } };
    case "exit":
      return { name, exit: {} };
  }
}

// freeName is kind-N, the first N not taken.
export function freeName(taken: string[], kind: StepKind): string {
  const base = kind.toLowerCase();
  for (let i = 1; ; i++) if (!taken.includes(`${base}-${i}`)) return `${base}-${i}`;
}

// addStep appends a step of kind and answers the text and the step's name.
export function addStep(text: string, kind: StepKind): { text: string; name: string } {
  let name = "";
  const out = edit(text, (doc) => {
    const s = steps(doc);
    const contents = (((doc.toJS() as { spec?: { contents?: { name: string }[] } })?.spec?.contents ?? []) as { name: string }[]).map((c) => c.name);
    name = freeName(
      s.map((x) => x.name),
      kind,
    );
    const node = doc.createNode(newStep(kind, name, contents));
    if (!doc.hasIn(["spec", "steps"])) doc.setIn(["spec", "steps"], doc.createNode([]));
    (doc.getIn(["spec", "steps"]) as { add: (n: unknown) => void }).add(node);
  });
  return { text: out, name };
}

function fieldOf(h: Handle, i: number, s: Step): (string | number)[] {
  const at = ["spec", "steps", i];
  if (h === "next") return [...at, "next"];
  if (h === "otherwise") return [...at, "branch", "otherwise"];
  if (h === "timeout") return [...at, "waitFor", "onTimeout"];
  if (h === "refused") return [...at, "grant", "onRefused"];
  const k = Number(h.slice("case-".length));
  if (!s.branch || k >= s.branch.cases.length) throw new Error(`step ${s.name} has no case ${k + 1}`);
  return [...at, "branch", "cases", k, "next"];
}

// connect points source's handle at target.
export function connect(text: string, source: string, handle: Handle, target: string): string {
  return edit(text, (doc) => {
    const s = steps(doc);
    const i = s.findIndex((x) => x.name === source);
    if (i < 0) throw new Error(`no step ${source}`);
    if (!s.some((x) => x.name === target)) throw new Error(`no step ${target}`);
    doc.setIn(fieldOf(handle, i, s[i]), target);
  });
}

// disconnect clears what source's handle points at.
export function disconnect(text: string, source: string, handle: Handle): string {
  return edit(text, (doc) => {
    const s = steps(doc);
    const i = s.findIndex((x) => x.name === source);
    if (i < 0) return;
    const f = fieldOf(handle, i, s[i]);
    if (handle.startsWith("case-")) doc.setIn(f, "");
    else doc.deleteIn(f);
  });
}

// addCase gives a branch one more case.
export function addCase(text: string, branch: string): string {
  return edit(text, (doc) => {
    const i = steps(doc).findIndex((x) => x.name === branch);
    if (i < 0) throw new Error(`no step ${branch}`);
    (doc.getIn(["spec", "steps", i, "branch", "cases"]) as { add: (n: unknown) => void }).add(doc.createNode({ when: "", next: "" }));
  });
}

// deleteStep removes a step and every pointer at it (a case's next is emptied: a branch
// case must go somewhere, which the check then says).
export function deleteStep(text: string, name: string): string {
  return edit(text, (doc) => {
    const s = steps(doc);
    const i = s.findIndex((x) => x.name === name);
    if (i < 0) return;
    doc.deleteIn(["spec", "steps", i]);
    const rest = steps(doc);
    rest.forEach((x, j) => {
      const at = ["spec", "steps", j];
      if (x.next === name) doc.deleteIn([...at, "next"]);
      if (x.waitFor?.onTimeout === name) doc.deleteIn([...at, "waitFor", "onTimeout"]);
      if (x.grant?.onRefused === name) doc.deleteIn([...at, "grant", "onRefused"]);
      if (x.branch?.otherwise === name) doc.deleteIn([...at, "branch", "otherwise"]);
      x.branch?.cases.forEach((c, k) => {
        if (c.next === name) doc.setIn([...at, "branch", "cases", k, "next"], "");
      });
    });
  });
}

// setField sets (or, for "" and undefined, removes) the value at path.
export function setField(text: string, path: (string | number)[], value: unknown): string {
  return edit(text, (doc) => {
    if (value === undefined || value === "" || (Array.isArray(value) && value.length === 0)) {
      if (doc.hasIn(path)) doc.deleteIn(path);
      return;
    }
    doc.setIn(path, value);
  });
}

// renameStep renames a step and every pointer at it.
export function renameStep(text: string, from: string, to: string): string {
  return edit(text, (doc) => {
    const s = steps(doc);
    s.forEach((x, j) => {
      const at = ["spec", "steps", j];
      if (x.name === from) doc.setIn([...at, "name"], to);
      if (x.next === from) doc.setIn([...at, "next"], to);
      if (x.waitFor?.onTimeout === from) doc.setIn([...at, "waitFor", "onTimeout"], to);
      if (x.grant?.onRefused === from) doc.setIn([...at, "grant", "onRefused"], to);
      if (x.branch?.otherwise === from) doc.setIn([...at, "branch", "otherwise"], to);
      x.branch?.cases.forEach((c, k) => {
        if (c.next === from) doc.setIn([...at, "branch", "cases", k, "next"], to);
      });
    });
  });
}

// stepOfField is the step a cause's field is about: spec.steps[3]... or spec.steps[name]...
// (the controller's form), or "" when it is about something else.
export function stepOfField(field: string | undefined, all: Step[]): string {
  const m = /^spec\.steps\[([^\]]+)\]/.exec(field ?? "");
  if (!m) return "";
  if (/^\d+$/.test(m[1])) return all[Number(m[1])]?.name ?? "";
  return all.some((s) => s.name === m[1]) ? m[1] : "";
}

export { isMap, isSeq };
