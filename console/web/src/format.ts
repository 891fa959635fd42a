// Numbers as the person's language writes them. Figures come from the Campaign status as
// they are; nothing is computed here that the server does not state.
import type { Lang } from "./i18n";

export function count(lang: Lang, n: number | undefined): string {
  return new Intl.NumberFormat(lang).format(n ?? 0);
}

export function money(lang: Lang, m: { amount: string; currency: string } | undefined): string {
  if (!m) return "–";
  const n = Number(m.amount);
  if (!Number.isFinite(n)) return `${m.amount} ${m.currency}`;
  return `${new Intl.NumberFormat(lang, { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(n)} ${m.currency}`;
}

// suppressedTotals sums the "why not sent" reasons over rows, largest first.
export function suppressedTotals(rows: { status: { counters?: { suppressed?: Record<string, number> } } }[]): [string, number][] {
  const sum = new Map<string, number>();
  for (const r of rows) {
    for (const [k, v] of Object.entries(r.status.counters?.suppressed ?? {})) sum.set(k, (sum.get(k) ?? 0) + v);
  }
  return [...sum.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

// roi writes a return-on-cost ratio ("1.50") as a percentage ("150%"), "–" when none.
export function roi(r: string | undefined): string {
  if (!r) return "–";
  const f = Number(r);
  return Number.isFinite(f) ? `${Math.round(f * 100)}%` : "–";
}
