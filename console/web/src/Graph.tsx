import { useMemo } from "react";
import { Background, Controls, ReactFlow, type Edge, type Node } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { layout, toGraph, type Spec } from "./graph";

// Graph draws a campaign's steps, laid out automatically; it follows the YAML.
export function Graph({ spec }: { spec: Spec }) {
  const { nodes, edges } = useMemo(() => {
    const g = toGraph(spec);
    const pos = layout(g.nodes, g.edges);
    const nodes: Node[] = g.nodes.map((n) => ({
      id: n.id,
      position: pos.get(n.id)!,
      data: { label: `${n.kind === "trigger" ? "▶" : n.kind}: ${n.label}${n.detail ? `\n${n.detail}` : ""}` },
      className: `step step-${n.kind}`,
      draggable: false,
      connectable: false,
    }));
    const edges: Edge[] = g.edges.map((e) => ({ id: e.id, source: e.source, target: e.target, label: e.label, className: "flow-edge" }));
    return { nodes, edges };
  }, [spec]);
  return (
    <div className="graph" data-testid="graph" data-nodes={nodes.length} data-edges={edges.length}>
      <ReactFlow nodes={nodes} edges={edges} fitView nodesDraggable={false} nodesConnectable={false} proOptions={{ hideAttribution: true }}>
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
