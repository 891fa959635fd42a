import { useEffect, useState } from "react";
import { call } from "./api";
import { useApp } from "./App";
import { count } from "./format";

export const dims = ["vip", "country", "rfm"] as const;
export type Dim = (typeof dims)[number];

interface SegmentRow {
  value: string;
  targeted?: number;
  sent?: number;
  converted?: number;
  conversionRate?: string;
}

// Breakdown is a campaign's figures by the players' VIP level, country or RFM segment when
// they were targeted, sent to and converted, read from the dispatcher's campaign report as
// the person (the dimension is in the URL, so the view can be shared).
export function Breakdown({ brand, name, dim, onDim }: { brand: string; name: string; dim?: Dim; onDim: (d: Dim) => void }) {
  const { t, lang } = useApp();
  const [rows, setRows] = useState<SegmentRow[] | null>(null);
  const [error, setError] = useState("");
  const d = dim ?? "vip";
  useEffect(() => {
    call<{ segments?: SegmentRow[] }>("GET", `/api/brands/${encodeURIComponent(brand)}/admin/campaigns/${encodeURIComponent(name)}/report?by=${d}`)
      .then((r) => {
        setRows(r.segments ?? []);
        setError("");
      })
      .catch((e) => setError((e as Error).message));
  }, [brand, name, d]);
  return (
    <div data-testid="breakdown">
      <div className="tabs" role="tablist">
        {dims.map((x) => (
          <button key={x} type="button" role="tab" aria-selected={x === d} className={x === d ? "active" : ""} onClick={() => onDim(x)} data-dim={x}>
            {t(`dim_${x}` as const)}
          </button>
        ))}
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {rows && rows.length === 0 && <p data-testid="breakdown-empty">{t("nothingYet")}</p>}
      {rows && rows.length > 0 && (
        <table className="grid narrow" data-testid="breakdown-rows">
          <thead>
            <tr>
              <th>{t(`dim_${d}` as const)}</th>
              <th className="num">{t("targeted")}</th>
              <th className="num">{t("sent")}</th>
              <th className="num">{t("converted")}</th>
              <th className="num">{t("conversionRate")}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.value} data-value={r.value}>
                <td>{r.value}</td>
                <td className="num">{count(lang, r.targeted)}</td>
                <td className="num">{count(lang, r.sent)}</td>
                <td className="num">{count(lang, r.converted)}</td>
                <td className="num">{r.conversionRate ?? "–"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
