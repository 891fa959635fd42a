import { useEffect, useMemo, useRef, useState } from "react";
import { Background, Controls, Handle, Position, ReactFlow, type Connection, type Edge, type Node, type NodeProps } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { addStep, connect, deleteStep, disconnect, handlesOf, kinds, renameStep, setField, stepOfField, type Handle as Outlet } from "./flowedit";
import { Field } from "./Form";
import { kindOf, layout, toGraph, triggerId, type Spec, type Step, type StepKind } from "./graph";
import { at, campaignSchema } from "./schema";
import type { Cause } from "./Editor";
import { useApp } from "./App";
import { AudiencePreview, TestSend } from "./Preview";

interface StepData extends Record<string, unknown> {
  kind: StepKind | "trigger";
  name: string;
  detail: string;
  error?: string;
  outlets: { id: string; label: string }[];
  editable: boolean;
}

// StepNode is one step: its kind, name and what it does, the API server's complaint about
// it, an inlet on top and an outlet per way out at the bottom (drag one onto a step to
// connect them).
function StepNode({ data, selected }: NodeProps<Node<StepData>>) {
  const n = data.outlets.length;
  return (
    <div className={`step step-${data.kind}${data.error ? " invalid" : ""}${selected ? " selected" : ""}`} data-step={data.name} title={data.error}>
      {data.kind !== "trigger" && <Handle type="target" position={Position.Top} isConnectable={data.editable} />}
      <div className="step-kind">{data.kind === "trigger" ? "▶ trigger" : data.kind}</div>
      <div className="step-name">{data.kind === "trigger" ? data.detail : data.name}</div>
      {data.kind !== "trigger" && data.detail && <div className="step-detail">{data.detail}</div>}
      {data.error && (
        <div className="node-error" data-testid="node-error">
          {data.error}
        </div>
      )}
      {data.outlets.map((o, i) => (
        <Handle key={o.id} type="source" id={o.id} position={Position.Bottom} isConnectable={data.editable && data.kind !== "trigger"} style={{ left: `${((i + 1) * 100) / (n + 1)}%` }}>
          {o.label && n > 1 && <span className="outlet-label">{o.label}</span>}
        </Handle>
      ))}
    </div>
  );
}

const nodeTypes = { step: StepNode };

// Builder draws a campaign's steps as a graph laid out automatically (no position is
// stored), and, for people who may edit, builds it: drag a kind from the palette onto the
// graph to add a step, drag from a step's outlet onto another step to connect them, select
// a step to edit it in its form or delete it, and the campaign's other parts in forms drawn
// from the CRD's schema. Every change is an edit of the YAML, which stays the truth.
export function Builder({ brand, name, saved, spec, yaml, setYAML, causes, editable }: { brand: string; name: string; saved: boolean; spec: Spec; yaml: string; setYAML?: (y: string) => void; causes: Cause[]; editable: boolean }) {
  const { t } = useApp();
  const steps = useMemo(() => spec.steps ?? [], [spec]);
  const [selected, setSelected] = useState<string>("");
  const [selectedEdge, setSelectedEdge] = useState<Edge | null>(null);
  const [dragging, setDragging] = useState<StepKind | null>(null);
  const [problem, setProblem] = useState("");
  const canvas = useRef<HTMLDivElement>(null);
  const change = (f: (y: string) => string) => {
    if (!setYAML) return;
    try {
      setYAML(f(yaml));
      setProblem("");
    } catch (e) {
      setProblem((e as Error).message);
    }
  };
  const byStep = useMemo(() => {
    const m = new Map<string, string[]>();
    for (const c of causes) {
      const s = stepOfField(c.field, steps);
      if (s) m.set(s, [...(m.get(s) ?? []), `${c.field?.replace(/^spec\.steps\[[^\]]+\]\.?/, "")}: ${c.message}`]);
    }
    return m;
  }, [causes, steps]);
  const { nodes, edges, height } = useMemo(() => {
    const g = toGraph(spec);
    const pos = layout(g.nodes, g.edges);
    // The graph is as tall as the steps laid out (up to a screen), so they are seen at
    // full size while a campaign is built; larger ones are fitted.
    const bottom = Math.max(0, ...[...pos.values()].map((p) => p.y));
    const height = Math.min(Math.max(bottom + 190, 360), 860);
    const byName = new Map(steps.map((s) => [s.name, s]));
    const nodes: Node<StepData>[] = g.nodes.map((n) => ({
      id: n.id,
      type: "step",
      position: pos.get(n.id)!,
      selected: n.id === selected,
      data: {
        kind: n.kind,
        name: n.label,
        detail: n.detail,
        error: byStep.get(n.id)?.join("; "),
        outlets: n.id === triggerId ? [{ id: "next", label: "" }] : handlesOf(byName.get(n.id)!),
        editable,
      },
      draggable: false,
    }));
    const edges: Edge[] = g.edges.map((e) => ({
      id: e.id,
      source: e.source,
      target: e.target,
      sourceHandle: e.handle,
      label: e.label,
      className: `flow-edge${e.implicit ? " implicit" : ""}`,
      selected: selectedEdge?.id === e.id,
      deletable: editable && !e.implicit,
    }));
    return { nodes, edges, height };
  }, [spec, steps, selected, selectedEdge, byStep, editable]);

  // Dropping a kind from the palette onto the graph adds a step (pointer events, so a
  // mouse, a pen and a finger all work).
  useEffect(() => {
    if (!dragging) return;
    const up = (e: PointerEvent) => {
      const el = document.elementFromPoint(e.clientX, e.clientY);
      if (el && canvas.current?.contains(el)) add(dragging);
      setDragging(null);
    };
    window.addEventListener("pointerup", up);
    return () => window.removeEventListener("pointerup", up);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [dragging, yaml]);
  const add = (k: StepKind) =>
    change((y) => {
      const r = addStep(y, k);
      setSelected(r.name);
      return r.text;
    });
  const remove = () => {
    if (selected && selected !== triggerId) {
      change((y) => deleteStep(y, selected));
      setSelected("");
    } else if (selectedEdge?.sourceHandle && selectedEdge.deletable) {
      change((y) => disconnect(y, selectedEdge.source, selectedEdge.sourceHandle as Outlet));
      setSelectedEdge(null);
    }
  };
  const onKey = (e: React.KeyboardEvent) => {
    const tag = (e.target as HTMLElement).tagName;
    if (editable && (e.key === "Delete" || e.key === "Backspace") && tag !== "INPUT" && tag !== "TEXTAREA" && tag !== "SELECT") {
      e.preventDefault();
      remove();
    }
  };
  const onConnect = (c: Connection) => {
    if (!c.source || !c.target || c.source === triggerId) return;
    change((y) => connect(y, c.source, (c.sourceHandle ?? "next") as Outlet, c.target));
  };
  const index = steps.findIndex((s) => s.name === selected);
  const step = index >= 0 ? steps[index] : undefined;
  const causeMap = useMemo(() => new Map(causes.filter((c) => c.field).map((c) => [c.field!, c.message])), [causes]);
  const set = (path: (string | number)[], v: unknown) => change((y) => setField(y, path, v));
  const readOnly = !editable || !setYAML;
  return (
    <div className="builder" data-testid="builder">
      {!readOnly && (
        <div className="palette" aria-label={t("addStep")}>
          <span>{t("addStep")}</span>
          {kinds.map((k) => (
            <button
              key={k}
              type="button"
              className={`palette-item step-${k}`}
              data-palette={k}
              onPointerDown={(e) => {
                e.preventDefault();
                setDragging(k);
              }}
              onKeyDown={(e) => {
                if (e.key === "Enter" || e.key === " ") add(k);
              }}
            >
              {k}
            </button>
          ))}
          {dragging && <span className="note">{t("dropOnGraph")}</span>}
        </div>
      )}
      <div className="builder-main">
        <div className={`graph${dragging ? " dropping" : ""}`} style={{ height }} ref={canvas} data-testid="graph" data-nodes={nodes.length} data-edges={edges.length} tabIndex={0} onKeyDown={onKey}>
          <ReactFlow
            key={`${height}:${nodes.map((n) => n.id).join(",")}` /* a step added or removed: fit the view again */}
            nodes={nodes}
            edges={edges}
            nodeTypes={nodeTypes}
            fitView
            fitViewOptions={{ maxZoom: 1 }}
            nodesDraggable={false}
            nodesConnectable={!readOnly}
            elementsSelectable
            onConnect={onConnect}
            onNodeClick={(_, n) => {
              setSelected(n.id);
              setSelectedEdge(null);
            }}
            onEdgeClick={(_, e) => {
              setSelectedEdge(e);
              setSelected("");
            }}
            onPaneClick={() => {
              setSelected("");
              setSelectedEdge(null);
            }}
            deleteKeyCode={null}
            proOptions={{ hideAttribution: true }}
          >
            <Background />
            <Controls showInteractive={false} />
          </ReactFlow>
        </div>
        <aside className="panel" data-testid="panel">
          {problem && <p className="error">{problem}</p>}
          {step ? (
            <>
              <StepForm step={step} index={index} steps={steps} readOnly={readOnly} causes={causeMap} errors={byStep.get(step.name) ?? []} set={set} rename={(to) => change((y) => renameStep(y, step.name, to))} onDelete={remove} />
              {saved && editable && step.send && <TestSend brand={brand} name={name} step={step.name} />}
            </>
          ) : selectedEdge && !readOnly ? (
            <div>
              <p>
                {selectedEdge.source} → {selectedEdge.target}
              </p>
              {selectedEdge.deletable ? (
                <button type="button" onClick={remove} data-testid="remove-link">
                  {t("removeLink")}
                </button>
              ) : (
                <p className="note">{t("implicitLink")}</p>
              )}
            </div>
          ) : (
            <>
              {saved && <AudiencePreview brand={brand} name={name} />}
              <Sections spec={spec} readOnly={readOnly} causes={causeMap} set={set} />
            </>
          )}
        </aside>
      </div>
    </div>
  );
}

const sections = ["trigger", "audience", "rewards", "experiment", "goal", "budget", "rollout", "schedule"] as const;

// Sections are the campaign's parts other than its steps, each a form from the schema.
function Sections({ spec, readOnly, causes, set }: { spec: Spec; readOnly: boolean; causes: Map<string, string>; set: (p: (string | number)[], v: unknown) => void }) {
  const [tab, setTab] = useState<(typeof sections)[number]>("trigger");
  const specSchema = at(campaignSchema, ["spec"]);
  const present = sections.filter((k) => specSchema?.properties?.[k]);
  const s = at(campaignSchema, ["spec", tab]);
  const values = spec as Record<string, unknown>;
  return (
    <div className="sections">
      <div className="tabs" role="tablist">
        {present.map((k) => (
          <button key={k} type="button" role="tab" aria-selected={k === tab} data-section={k} className={[k === tab ? "active" : "", [...causes.keys()].some((f) => f.startsWith(`spec.${k}`)) ? "invalid" : ""].join(" ")} onClick={() => setTab(k)}>
            {k}
          </button>
        ))}
      </div>
      {s && <Field s={s} path={["spec", tab]} value={values[tab]} set={set} causes={causes} name={tab} readOnly={readOnly} />}
    </div>
  );
}

// StepForm edits one step: its name (pointers at it follow), where it goes next, and its
// action's fields from the schema.
function StepForm({ step, index, steps, readOnly, causes, errors, set, rename, onDelete }: { step: Step; index: number; steps: Step[]; readOnly: boolean; causes: Map<string, string>; errors: string[]; set: (p: (string | number)[], v: unknown) => void; rename: (to: string) => void; onDelete: () => void }) {
  const { t } = useApp();
  const kind = kindOf(step);
  const s = at(campaignSchema, ["spec", "steps", index, kind]);
  const path = ["spec", "steps", index];
  return (
    <div className="step-form" data-testid="step-form" data-step={step.name}>
      <h3>
        {kind}: {step.name}
      </h3>
      {errors.length > 0 && (
        <ul className="error">
          {errors.map((e, i) => (
            <li key={i}>{e}</li>
          ))}
        </ul>
      )}
      <label className="field">
        <span>name</span>
        <input readOnly={readOnly} data-field={`spec.steps[${index}].name`} value={step.name} onChange={(e) => rename(e.target.value)} />
      </label>
      {kind !== "branch" && kind !== "exit" && (
        <label className="field">
          <span>next</span>
          <select disabled={readOnly} data-field={`spec.steps[${index}].next`} value={step.next ?? ""} onChange={(e) => set([...path, "next"], e.target.value || undefined)}>
            <option value="">{t("followingStep")}</option>
            {steps
              .filter((x) => x.name !== step.name)
              .map((x) => (
                <option key={x.name} value={x.name}>
                  {x.name}
                </option>
              ))}
          </select>
        </label>
      )}
      {s && <Field s={s} path={[...path, kind]} value={(step as unknown as Record<string, unknown>)[kind]} set={set} causes={causes} name={kind} readOnly={readOnly} />}
      {!readOnly && (
        <button type="button" className="danger" onClick={onDelete} data-testid="delete-step">
          {t("deleteStep")}
        </button>
      )}
    </div>
  );
}
