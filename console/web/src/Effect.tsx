import { useEffect, useState } from "react";
import { call } from "./api";
import { useApp } from "./App";
import { count } from "./format";

interface RetentionRow {
  day: number;
  eligible: number;
  active: number;
  rate?: string;
  pValue?: string;
}

export interface EffectRow {
  arm: string;
  players: number;
  days: number;
  depositsBefore?: string;
  depositsAfter?: string;
  depositsChange?: string;
  depositsUplift?: string;
  depositsPValue?: string;
  ngrBefore?: string;
  ngrAfter?: string;
  ngrChange?: string;
  ngrUplift?: string;
  ngrPValue?: string;
  retention: RetentionRow[];
  significant?: boolean;
}

// Effect is the campaign's post-campaign effect per arm, from the dispatcher's campaign
// report read as the person: deposits and NGR per player before and after, the uplift
// against the control group with its p-value, and retention on days 1, 7 and 30.
export function Effect({ brand, name }: { brand: string; name: string }) {
  const { t, lang } = useApp();
  const [rows, setRows] = useState<EffectRow[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    call<{ effect?: EffectRow[] }>("GET", `/api/brands/${encodeURIComponent(brand)}/admin/campaigns/${encodeURIComponent(name)}/report`)
      .then((r) => {
        setRows(r.effect ?? []);
        setError("");
      })
      .catch((e) => setError((e as Error).message));
  }, [brand, name]);
  const dash = (s?: string) => s ?? "–";
  return (
    <div data-testid="effect">
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {rows && rows.length === 0 && <p data-testid="effect-empty">{t("nothingYet")}</p>}
      {rows && rows.length > 0 && (
        <>
          <p className="note">{t("effectNote").replaceAll("{n}", String(rows[0].days))}</p>
          <table className="grid" data-testid="effect-rows">
            <thead>
              <tr>
                <th>{t("arm")}</th>
                <th className="num">{t("players")}</th>
                <th className="num">{t("depositsBA")}</th>
                <th className="num">{t("change")}</th>
                <th className="num">{t("uplift")}</th>
                <th className="num">{t("pValue")}</th>
                <th className="num">{t("ngrBA")}</th>
                <th className="num">{t("change")}</th>
                <th className="num">{t("uplift")}</th>
                <th className="num">{t("pValue")}</th>
                {[1, 7, 30].map((d) => (
                  <th key={d} className="num">
                    {t("retentionDay")} {d}
                  </th>
                ))}
                <th>{t("significant")}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.arm} data-arm={r.arm}>
                  <td>{r.arm}</td>
                  <td className="num">{count(lang, r.players)}</td>
                  <td className="num">
                    {dash(r.depositsBefore)} → {dash(r.depositsAfter)}
                  </td>
                  <td className="num">{dash(r.depositsChange)}</td>
                  <td className="num">{dash(r.depositsUplift)}</td>
                  <td className="num">{dash(r.depositsPValue)}</td>
                  <td className="num">
                    {dash(r.ngrBefore)} → {dash(r.ngrAfter)}
                  </td>
                  <td className="num">{dash(r.ngrChange)}</td>
                  <td className="num">{dash(r.ngrUplift)}</td>
                  <td className="num">{dash(r.ngrPValue)}</td>
                  {[1, 7, 30].map((d) => {
                    const x = r.retention.find((y) => y.day === d);
                    return (
                      <td key={d} className="num" data-day={d}>
                        {x?.rate ? `${x.rate} (${count(lang, x.eligible)})` : "–"}
                      </td>
                    );
                  })}
                  <td>{r.significant ? t("yes") : t("no")}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </div>
  );
}
