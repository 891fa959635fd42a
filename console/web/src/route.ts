// The console's place lives in the URL, so a view (a brand, a campaign, a drill-down) can
// be shared as a link.
export type Route =
  | { page: "signin" }
  | { page: "dashboard"; brand: string }
  | { page: "new"; brand: string }
  | { page: "player"; brand: string; player: string }
  | { page: "segments"; brand: string; segment?: string }
  | { page: "tournaments"; brand: string }
  | { page: "coupons"; brand: string }
  | { page: "reports"; brand: string }
  | { page: "campaign"; brand: string; campaign: string; by?: string; from?: string; to?: string };

const label = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const date = /^\d{4}-\d{2}-\d{2}$/;
const player = /^[A-Za-z0-9_-]{1,128}$/;

export function parse(pathname: string, search = ""): Route {
  const parts = pathname.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "brands" && parts[1] && label.test(parts[1])) {
    if (parts[2] === "campaigns" && parts[3] && label.test(parts[3])) {
      const q = new URLSearchParams(search);
      const r: Route = { page: "campaign", brand: parts[1], campaign: parts[3] };
      const by = q.get("by");
      if (by === "day" || by === "channel" || by === "vip" || by === "country" || by === "rfm") r.by = by;
      for (const k of ["from", "to"] as const) {
        const v = q.get(k);
        if (v && date.test(v)) r[k] = v;
      }
      return r;
    }
    if (parts[2] === "new" && parts.length === 3) return { page: "new", brand: parts[1] };
    if (parts[2] === "players" && parts[3] && player.test(parts[3])) return { page: "player", brand: parts[1], player: parts[3] };
    if (parts[2] === "segments" && !parts[3]) return { page: "segments", brand: parts[1] };
    if (parts[2] === "tournaments" && !parts[3]) return { page: "tournaments", brand: parts[1] };
    if (parts[2] === "coupons" && !parts[3]) return { page: "coupons", brand: parts[1] };
    if (parts[2] === "reports" && !parts[3]) return { page: "reports", brand: parts[1] };
    if (parts[2] === "segments" && parts[3] && label.test(parts[3])) return { page: "segments", brand: parts[1], segment: parts[3] };
    return { page: "dashboard", brand: parts[1] };
  }
  return { page: "signin" };
}

export function format(r: Route): string {
  switch (r.page) {
    case "signin":
      return "/";
    case "dashboard":
      return `/brands/${encodeURIComponent(r.brand)}`;
    case "new":
      return `/brands/${encodeURIComponent(r.brand)}/new`;
    case "segments":
      return `/brands/${encodeURIComponent(r.brand)}/segments${r.segment ? `/${encodeURIComponent(r.segment)}` : ""}`;
    case "tournaments":
      return `/brands/${encodeURIComponent(r.brand)}/tournaments`;
    case "coupons":
      return `/brands/${encodeURIComponent(r.brand)}/coupons`;
    case "reports":
      return `/brands/${encodeURIComponent(r.brand)}/reports`;
    case "player":
      return `/brands/${encodeURIComponent(r.brand)}/players/${encodeURIComponent(r.player)}`;
    case "campaign": {
      const p = new URLSearchParams();
      if (r.by) p.set("by", r.by);
      if (r.from) p.set("from", r.from);
      if (r.to) p.set("to", r.to);
      const q = p.size > 0 ? `?${p.toString()}` : "";
      return `/brands/${encodeURIComponent(r.brand)}/campaigns/${encodeURIComponent(r.campaign)}${q}`;
    }
  }
}
