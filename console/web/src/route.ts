// The console's place lives in the URL, so a view (a brand, a campaign, a drill-down) can
// be shared as a link.
export type Route =
  | { page: "signin" }
  | { page: "dashboard"; brand: string }
  | { page: "campaign"; brand: string; campaign: string; by?: string };

const label = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function parse(pathname: string, search = ""): Route {
  const parts = pathname.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "brands" && parts[1] && label.test(parts[1])) {
    if (parts[2] === "campaigns" && parts[3] && label.test(parts[3])) {
      const by = new URLSearchParams(search).get("by") ?? undefined;
      return by ? { page: "campaign", brand: parts[1], campaign: parts[3], by } : { page: "campaign", brand: parts[1], campaign: parts[3] };
    }
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
    case "campaign": {
      const q = r.by ? `?by=${encodeURIComponent(r.by)}` : "";
      return `/brands/${encodeURIComponent(r.brand)}/campaigns/${encodeURIComponent(r.campaign)}${q}`;
    }
  }
}
