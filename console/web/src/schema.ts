// The Campaign's own schema (the CRD's openAPIV3Schema, as `make manifests` writes it),
// read at build time: the builder's forms are drawn from it, so a field added to the API
// appears in the console without a copy of its rules here. The API server still decides.
import { parse } from "yaml";
import crd from "../../../config/crd/bases/crm.croupier.dev_campaigns.yaml?raw";

export interface Schema {
  type?: string;
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  required?: string[];
  enum?: (string | number)[];
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  "x-kubernetes-int-or-string"?: boolean;
  additionalProperties?: Schema | boolean;
}

interface CRD {
  spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
}

export const campaignSchema: Schema = (parse(crd) as CRD).spec.versions[0].schema.openAPIV3Schema;

// at is the schema of the field at path (names and indexes), or undefined.
export function at(s: Schema | undefined, path: (string | number)[]): Schema | undefined {
  for (const p of path) {
    if (!s) return undefined;
    s = typeof p === "number" ? s.items : s.properties?.[p];
  }
  return s;
}

// fieldName is a path written the way the API server names fields: spec.steps[1].send.
export function fieldName(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

// scalar converts what a person typed into the value the schema wants ("" removes it).
export function scalar(s: Schema, typed: string): unknown {
  const v = typed.trim();
  if (v === "") return undefined;
  if (s.type === "integer" || s.type === "number") {
    const n = Number(v);
    return Number.isFinite(n) ? n : v; // the API server names what is wrong
  }
  if (s["x-kubernetes-int-or-string"] && /^-?\d+$/.test(v)) return Number(v);
  return typed;
}
