// The segment rule builder: a list of conditions on the player's common fields, joined by
// "and", written as the CEL rule the Segment holds. A rule written by hand that is not such
// a list stays CEL (fromCEL answers null) and is edited in the CEL tab.

export type FieldType = "string" | "int" | "float" | "bool" | "enum";

export interface FieldDef {
  name: string;
  type: FieldType;
  options?: string[];
}

// The player fields the builder offers (rules.Player; the CEL tab has all of them).
export const fields: FieldDef[] = [
  { name: "country", type: "string" },
  { name: "language", type: "string" },
  { name: "vipLevel", type: "int" },
  { name: "kycStatus", type: "enum", options: ["none", "pending", "passed", "failed"] },
  { name: "depositCount", type: "int" },
  { name: "depositSum", type: "float" },
  { name: "ltv", type: "float" },
  { name: "betCount", type: "int" },
  { name: "avgBet", type: "float" },
  { name: "daysInactive", type: "int" },
  { name: "churnRisk", type: "float" },
  { name: "favoriteGameCategory", type: "string" },
  { name: "acquisitionChannel", type: "string" },
  { name: "rfm.segment", type: "string" },
  { name: "rfm.r", type: "int" },
  { name: "rfm.f", type: "int" },
  { name: "rfm.m", type: "int" },
  { name: "hasEmail", type: "bool" },
  { name: "hasPhone", type: "bool" },
  { name: "hasPush", type: "bool" },
  { name: "selfExcluded", type: "bool" },
];

export const ops = ["==", "!=", ">=", "<=", ">", "<"] as const;

export interface Cond {
  field: string;
  op: string; // one of ops; for bool fields "is" or "not"
  value: string;
}

const byName = new Map(fields.map((f) => [f.name, f]));

function literal(f: FieldDef, v: string): string {
  switch (f.type) {
    case "int":
      return String(Math.trunc(Number(v) || 0));
    case "float": {
      const n = Number(v) || 0;
      return Number.isInteger(n) ? n.toFixed(1) : String(n); // CEL compares a double with a double
    }
    default:
      return JSON.stringify(v);
  }
}

// toCEL writes the conditions as one rule ("true" for none: everyone).
export function toCEL(conds: Cond[]): string {
  const parts = conds.flatMap((c) => {
    const f = byName.get(c.field);
    if (!f) return [];
    if (f.type === "bool") return [`${c.op === "not" ? "!" : ""}player.${f.name}`];
    return [`player.${f.name} ${c.op} ${literal(f, c.value)}`];
  });
  return parts.length === 0 ? "true" : parts.join(" && ");
}

const part = /^(!?)player\.([a-zA-Z.]+)(?:\s*(==|!=|>=|<=|>|<)\s*(.+))?$/;

// fromCEL reads a rule written as conditions joined by &&; null when it is anything else.
export function fromCEL(cel: string): Cond[] | null {
  const s = cel.trim();
  if (s === "" || s === "true") return [];
  if (/\|\||\(|\)/.test(s)) return null;
  const out: Cond[] = [];
  for (const p of s.split("&&").map((x) => x.trim())) {
    const m = part.exec(p);
    if (!m) return null;
    const f = byName.get(m[2]);
    if (!f) return null;
    if (f.type === "bool") {
      if (m[3]) return null;
      out.push({ field: f.name, op: m[1] ? "not" : "is", value: "" });
      continue;
    }
    if (m[1] || !m[3]) return null;
    let v = m[4].trim();
    if (f.type === "string" || f.type === "enum") {
      if (!/^"([^"\\]|\\.)*"$/.test(v)) return null;
      v = JSON.parse(v) as string;
    } else if (!/^-?\d+(\.\d+)?$/.test(v)) return null;
    out.push({ field: f.name, op: m[3], value: v });
  }
  return out;
}
