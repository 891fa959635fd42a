import { useEffect, useState } from "react";
import type { Row } from "./api";

interface LiveEvent {
  kind: "snapshot" | "upsert" | "delete";
  rows?: Row[];
  name?: string;
}

// apply folds one stream event into the rows (sorted by name).
export function apply(rows: Row[], ev: LiveEvent): Row[] {
  switch (ev.kind) {
    case "snapshot":
      return [...(ev.rows ?? [])].sort((a, b) => a.name.localeCompare(b.name));
    case "upsert": {
      const byName = new Map(rows.map((r) => [r.name, r]));
      for (const r of ev.rows ?? []) byName.set(r.name, r);
      return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
    }
    case "delete":
      return rows.filter((r) => r.name !== ev.name);
  }
}

// useLive follows a brand's campaigns over server-sent events (the browser reconnects by
// itself; each connection starts with a snapshot).
export function useLive(brand: string, enabled = true): { rows: Row[] | null; connected: boolean } {
  const [rows, setRows] = useState<Row[] | null>(null);
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    if (!enabled) return;
    const es = new EventSource(`/api/brands/${encodeURIComponent(brand)}/live`);
    es.onopen = () => setConnected(true);
    es.onerror = () => setConnected(false);
    es.onmessage = (m) => {
      const ev = JSON.parse(m.data) as LiveEvent;
      setRows((cur) => apply(cur ?? [], ev));
    };
    return () => es.close();
  }, [brand, enabled]);
  return { rows, connected };
}
