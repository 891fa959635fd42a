import { describe, expect, it } from "vitest";
import { format, parse, type Route } from "./route";

describe("route", () => {
  it("round-trips every page through the URL", () => {
    const routes: Route[] = [
      { page: "signin" },
      { page: "dashboard", brand: "baku-casino" },
      { page: "new", brand: "baku-casino" },
      { page: "player", brand: "baku-casino", player: "P_100-0" },
      { page: "segments", brand: "baku-casino" },
      { page: "tournaments", brand: "baku-casino" },
      { page: "coupons", brand: "baku-casino" },
      { page: "reports", brand: "baku-casino" },
      { page: "segments", brand: "baku-casino", segment: "vip-azerbaijan" },
      { page: "campaign", brand: "baku-casino", campaign: "welcome-series" },
      { page: "campaign", brand: "baku-casino", campaign: "welcome-series", by: "channel" },
      { page: "campaign", brand: "baku-casino", campaign: "welcome-series", by: "country" },
      { page: "campaign", brand: "baku-casino", campaign: "welcome-series", by: "day", from: "2026-12-01", to: "2026-12-07" },
    ];
    for (const r of routes) {
      const u = new URL(format(r), "http://x");
      expect(parse(u.pathname, u.search)).toEqual(r);
    }
  });
  it("refuses names that are not Kubernetes names", () => {
    expect(parse("/brands/Baku_Casino")).toEqual({ page: "signin" });
    expect(parse("/brands/baku/campaigns/<script>")).toEqual({ page: "dashboard", brand: "baku" });
    expect(parse("/brands/baku/players/a%2Fb")).toEqual({ page: "dashboard", brand: "baku" });
    expect(parse("/brands/baku/campaigns/x", "?by=<b>&from=yesterday&to=2026-12-07")).toEqual({ page: "campaign", brand: "baku", campaign: "x", to: "2026-12-07" });
  });
});
