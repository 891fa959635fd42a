import { useEffect, useState } from "react";
import { call, can, type Access, type Row } from "./api";
import { useApp } from "./App";
import { BackLink } from "./BackLink";
import { PlayerLookup } from "./PlayerPage";
import { count, money, roi, suppressedTotals } from "./format";
import { useLive } from "./live";

export function useAccess(brand: string): Access | null {
  const [access, setAccess] = useState<Access | null>(null);
  useEffect(() => {
    call<Access>("GET", `/api/brands/${encodeURIComponent(brand)}/access`)
      .then(setAccess)
      .catch(() => setAccess({}));
  }, [brand]);
  return access;
}

export function PauseButton({ brand, row, onError }: { brand: string; row: Row; onError: (m: string) => void }) {
  const { t } = useApp();
  const [busy, setBusy] = useState(false);
  const toggle = async () => {
    setBusy(true);
    try {
      await call("PUT", `/api/brands/${encodeURIComponent(brand)}/campaigns/${encodeURIComponent(row.name)}/paused`, { paused: !row.paused });
    } catch (e) {
      onError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <button disabled={busy} onClick={toggle} data-testid={`pause-${row.name}`}>
      {row.paused ? t("resume") : t("pause")}
    </button>
  );
}

export function Dashboard({ brand }: { brand: string }) {
  const { t, lang, go } = useApp();
  const access = useAccess(brand);
  // People who may not list campaigns (the support desk) get no stream to be refused.
  const { rows, connected } = useLive(brand, access !== null && can(access, "crm.croupier.dev", "campaigns", "list"));
  const [error, setError] = useState("");
  const mayPause = can(access, "crm.croupier.dev", "campaigns", "patch");
  const mayList = can(access, "crm.croupier.dev", "campaigns", "list");
  const mayLookup = can(access, "admin.crm.croupier.dev", "players/history", "get");
  if (access && !mayList)
    // The support desk reads players, not campaigns.
    return (
      <section>
        <h1>{brand}</h1>
        {mayLookup ? <PlayerLookup brand={brand} /> : <p className="note">{t("nothingHere")}</p>}
      </section>
    );
  return (
    <section>
      <h1>
        {t("campaigns")} · {brand}{" "}
        <span className={connected ? "badge live" : "badge"} data-testid="live">
          {connected ? t("live") : t("reconnecting")}
        </span>
      </h1>
      {access && !mayPause && <p className="note">{t("readOnly")}</p>}
      {mayLookup && <PlayerLookup brand={brand} />}
      <p className="actions">
        <BackLink to={{ page: "segments", brand }} label={t("segments")} testid="segments-link" />
        <BackLink to={{ page: "tournaments", brand }} label={t("tournaments")} testid="tournaments-link" />
        <BackLink to={{ page: "coupons", brand }} label={t("coupons")} testid="coupons-link" />
        {can(access, "crm.croupier.dev", "reports", "list") && (
          <BackLink to={{ page: "reports", brand }} label={t("reports")} testid="reports-link" />
        )}
      </p>
      {can(access, "crm.croupier.dev", "campaigns", "create") && (
        <p>
          <a
            href={`/brands/${brand}/new`}
            data-testid="new-campaign"
            onClick={(e) => {
              e.preventDefault();
              go({ page: "new", brand });
            }}
          >
            + {t("newCampaign")}
          </a>
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {rows && rows.length === 0 && <p>{t("noCampaigns")}</p>}
      {rows && rows.length > 0 && (
        <table className="grid" data-testid="campaigns">
          <thead>
            <tr>
              <th>{t("name")}</th>
              <th>{t("phase")}</th>
              <th>{t("ready")}</th>
              <th className="num">{t("launched")}</th>
              <th className="num">{t("targeted")}</th>
              <th className="num">{t("sent")}</th>
              <th className="num">{t("delivered")}</th>
              <th className="num">{t("opened")}</th>
              <th className="num">{t("clicked")}</th>
              <th className="num">{t("converted")}</th>
              <th className="num">{t("bonusesActivated")}</th>
              <th className="num">{t("rewardsCancelled")}</th>
              <th className="num">{t("failed")}</th>
              <th className="num">{t("spend")}</th>
              <th className="num">{t("budget")}</th>
              <th className="num">{t("roi")}</th>
              <th className="num">{t("cpa")}</th>
              {mayPause && <th />}
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => {
              const c = r.status.counters ?? {};
              // Opens and clicks are counted per channel (docs/analytics.md); the row sums them.
              const sum = (k: "opened" | "clicked") => (r.status.channels ?? []).reduce((n, ch) => n + (ch[k] ?? 0), 0);
              return (
                <tr key={r.name} data-campaign={r.name}>
                  <td>
                    <a
                      href={`/brands/${brand}/campaigns/${r.name}`}
                      onClick={(e) => {
                        e.preventDefault();
                        go({ page: "campaign", brand, campaign: r.name });
                      }}
                    >
                      {r.name}
                    </a>
                    {r.paused && <span className="badge">{t("paused")}</span>}
                  </td>
                  <td>{r.status.phase ?? "–"}</td>
                  <td title={r.message}>{r.ready === "True" ? "✓" : r.reason || "–"}</td>
                  <td className="num" data-counter="launched">{count(lang, c.launched)}</td>
                  <td className="num" data-counter="targeted">{count(lang, c.targeted)}</td>
                  <td className="num" data-counter="sent">{count(lang, c.sent)}</td>
                  <td className="num" data-counter="delivered">{count(lang, c.delivered)}</td>
                  <td className="num" data-counter="opened">{count(lang, sum("opened"))}</td>
                  <td className="num" data-counter="clicked">{count(lang, sum("clicked"))}</td>
                  <td className="num" data-counter="converted">{count(lang, c.converted)}</td>
                  <td className="num" data-counter="bonusesActivated">{count(lang, c.bonusesActivated)}</td>
                  <td className="num" data-counter="rewardsCancelled">{count(lang, c.rewardsCancelled)}</td>
                  <td className="num" data-counter="failed">{count(lang, c.failed)}</td>
                  <td className="num">{money(lang, r.status.spend?.spent)}</td>
                  <td className="num">{money(lang, r.budget?.total ?? r.budget?.perPeriod?.amount)}</td>
                  <td className="num" data-counter="roi">{roi(r.status.report?.roi)}</td>
                  <td className="num">{r.status.report?.cpa ? `${r.status.report.cpa} ${r.status.report.currency ?? ""}` : "–"}</td>
                  {mayPause && (
                    <td>
                      <PauseButton brand={brand} row={r} onError={setError} />
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <h2>{t("whyNotSent")}</h2>
      <ReasonsTable rows={rows ?? []} />
    </section>
  );
}

// ReasonsTable is "why not sent": the routing reasons that held messages back, summed over
// the rows, largest first.
export function ReasonsTable({ rows }: { rows: Row[] }) {
  const { t, lang } = useApp();
  const totals = suppressedTotals(rows);
  if (totals.length === 0) return <p>{t("noSuppressions")}</p>;
  return (
    <table className="grid narrow" data-testid="suppressed">
      <thead>
        <tr>
          <th>{t("reason")}</th>
          <th className="num">{t("count")}</th>
        </tr>
      </thead>
      <tbody>
        {totals.map(([reason, n]) => (
          <tr key={reason}>
            <td>{reason}</td>
            <td className="num">{count(lang, n)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
