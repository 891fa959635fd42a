import { useEffect, useState } from "react";
import { call, type ChannelReport } from "./api";
import { useApp } from "./App";
import { count } from "./format";

interface Report {
  from: string;
  to: string;
  timeZone: string;
  total: ChannelReport[];
  days?: { day: string; channels: ChannelReport[] }[];
}

// Period is a campaign's figures per channel and day over a period of the brand's days,
// from the dispatcher's channel report read as the person; the period lives in the URL.
export function Period({ brand, name, from, to, onPeriod }: { brand: string; name: string; from?: string; to?: string; onPeriod: (from: string, to: string) => void }) {
  const { t, lang } = useApp();
  const [rep, setRep] = useState<Report | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    const q = new URLSearchParams({ campaign: name, by: "day" });
    if (from) q.set("from", from);
    if (to) q.set("to", to);
    setError("");
    call<Report>("GET", `/api/brands/${encodeURIComponent(brand)}/admin/channels/report?${q}`)
      .then(setRep)
      .catch((e) => setError((e as Error).message));
  }, [brand, name, from, to]);
  return (
    <div data-testid="period">
      <div className="actions">
        <label>
          {t("from")} <input type="date" aria-label={t("from")} value={rep?.from ?? from ?? ""} onChange={(e) => onPeriod(e.target.value, rep?.to ?? to ?? "")} />
        </label>
        <label>
          {t("to")} <input type="date" aria-label={t("to")} value={rep?.to ?? to ?? ""} onChange={(e) => onPeriod(rep?.from ?? from ?? "", e.target.value)} />
        </label>
        {rep && <span className="note">{rep.timeZone}</span>}
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {rep && (rep.days ?? []).length === 0 && <p data-testid="period-empty">{t("nothingInPeriod")}</p>}
      {rep && (rep.days ?? []).length > 0 && (
        <table className="grid" data-testid="period-days">
          <thead>
            <tr>
              <th>{t("day")}</th>
              <th>{t("channel")}</th>
              <th className="num">{t("sent")}</th>
              <th className="num">{t("delivered")}</th>
              <th className="num">{t("opened")}</th>
              <th className="num">{t("clicked")}</th>
              <th className="num">{t("converted")}</th>
              <th className="num">{t("messageCost")}</th>
              <th className="num">{t("revenue")}</th>
            </tr>
          </thead>
          <tbody>
            {(rep.days ?? []).flatMap((d) =>
              d.channels.map((c) => (
                <tr key={`${d.day}/${c.channel}`} data-day={d.day} data-channel={c.channel}>
                  <td>{d.day}</td>
                  <td>{c.channel}</td>
                  <td className="num">{count(lang, c.sent)}</td>
                  <td className="num">{count(lang, c.delivered)}</td>
                  <td className="num">{count(lang, c.opened)}</td>
                  <td className="num">{count(lang, c.clicked)}</td>
                  <td className="num">{count(lang, c.converted)}</td>
                  <td className="num">{c.messageCost ?? "–"}</td>
                  <td className="num">{c.revenue ?? "–"}</td>
                </tr>
              )),
            )}
          </tbody>
        </table>
      )}
    </div>
  );
}
