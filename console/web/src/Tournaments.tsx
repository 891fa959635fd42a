import { useEffect, useState } from "react";
import { call } from "./api";
import { useApp } from "./App";
import { BackLink } from "./BackLink";
import { useLive } from "./live";

interface Standing {
  campaign: string;
  final: boolean;
  participants: number;
  top: { rank: number; player: string; score: number }[];
}

// TournamentsPage shows each tournament campaign's live leaderboard, read from the
// dispatcher (standings, as the person) every few seconds while the page is open.
export function TournamentsPage({ brand }: { brand: string }) {
  const { t } = useApp();
  const { rows } = useLive(brand);
  const tournaments = (rows ?? []).filter((r) => r.tournament);
  return (
    <section>
      <BackLink to={{ page: "dashboard", brand }} label={`← ${t("back")}`} />
      <h1>
        {t("tournaments")} · {brand}
      </h1>
      {rows && tournaments.length === 0 && <p>{t("noTournaments")}</p>}
      {tournaments.map((r) => (
        <Board key={r.name} brand={brand} campaign={r.name} />
      ))}
    </section>
  );
}

function Board({ brand, campaign }: { brand: string; campaign: string }) {
  const { t, lang } = useApp();
  const [st, setSt] = useState<Standing | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    let live = true;
    const load = () =>
      call<Standing>("GET", `/api/brands/${encodeURIComponent(brand)}/admin/campaigns/${encodeURIComponent(campaign)}/standings?top=20`)
        .then((s) => {
          if (live) {
            setSt(s);
            setError("");
          }
        })
        .catch((e) => live && setError((e as Error).message));
    load();
    const timer = setInterval(load, 5000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [brand, campaign]);
  return (
    <div className="board" data-testid="board" data-campaign={campaign}>
      <h2>
        {campaign} {st?.final && <span className="badge">{t("final")}</span>}
      </h2>
      {error && <p className="error">{error}</p>}
      {st && (
        <>
          <p>
            {t("participants")}: {st.participants.toLocaleString(lang)}
          </p>
          <table className="grid narrow">
            <thead>
              <tr>
                <th className="num">#</th>
                <th>{t("player")}</th>
                <th className="num">{t("score")}</th>
              </tr>
            </thead>
            <tbody>
              {st.top.map((p) => (
                <tr key={p.rank} data-rank={p.rank}>
                  <td className="num">{p.rank}</td>
                  <td>{p.player}</td>
                  <td className="num">{(p.score / 100).toLocaleString(lang, { minimumFractionDigits: 2 })}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </div>
  );
}
