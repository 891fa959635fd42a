import { useCallback, useEffect, useState } from "react";
import { call, can } from "./api";
import { useApp } from "./App";
import { BackLink } from "./BackLink";
import { useAccess } from "./Dashboard";

export const playerId = /^[A-Za-z0-9_-]{1,128}$/;

const admin = (brand: string, path: string) => `/api/brands/${encodeURIComponent(brand)}/admin/${path}`;

interface Effective {
  category: string;
  channel: string;
  state: string;
  mandatory: boolean;
  default: boolean;
}
interface Preferences {
  player: string;
  matrix: Effective[];
  quietHours?: { start: string; end: string; timeZone?: string };
  languages?: { channel?: string; language: string }[];
  updated?: string;
}
interface Entry {
  time: string;
  local?: string;
  campaign?: string;
  step?: string;
  kind: string;
  channel?: string;
  result: string;
  reason: string;
  detail?: string;
  decisionID: string;
}

// PlayerLookup is the support desk's way in: a player's id, to their page.
export function PlayerLookup({ brand }: { brand: string }) {
  const { t, go } = useApp();
  const [id, setId] = useState("");
  return (
    <form
      className="lookup"
      data-testid="player-lookup"
      onSubmit={(e) => {
        e.preventDefault();
        if (playerId.test(id.trim())) go({ page: "player", brand, player: id.trim() });
      }}
    >
      <label>
        {t("playerLookup")}{" "}
        <input value={id} onChange={(e) => setId(e.target.value)} data-testid="player-id" placeholder="p-100000" />
      </label>
      <button type="submit" disabled={!playerId.test(id.trim())}>
        {t("open")}
      </button>
    </form>
  );
}

// PlayerPage shows the support desk a player as the dispatcher knows them, read as the
// agent: the preferences matrix (changed here on the player's request, recorded with
// source "support" and the agent), and every decision and attempt with its reason.
export function PlayerPage({ brand, player }: { brand: string; player: string }) {
  const { t } = useApp();
  const access = useAccess(brand);
  const [prefs, setPrefs] = useState<Preferences | null>(null);
  const [history, setHistory] = useState<Entry[] | null>(null);
  const [error, setError] = useState("");
  const [changed, setChanged] = useState("");
  const mayChange = can(access, "admin.crm.croupier.dev", "players/preferences", "update");
  const p = encodeURIComponent(player);
  const load = useCallback(() => {
    call<Preferences>("GET", admin(brand, `players/${p}/preferences`))
      .then(setPrefs)
      .catch((e) => setError((e as Error).message));
    call<{ entries: Entry[] }>("GET", admin(brand, `players/${p}/history`))
      .then((h) => setHistory([...h.entries].reverse()))
      .catch((e) => setError((e as Error).message));
  }, [brand, p]);
  useEffect(load, [load]);
  const toggle = (c: Effective) => {
    const state = c.state === "granted" ? "withdrawn" : "granted";
    call<Preferences>("PUT", admin(brand, `players/${p}/preferences`), { choices: [{ category: c.category, channel: c.channel, state }] })
      .then((v) => {
        setChanged(`${c.category}/${c.channel}: ${state}`);
        if (v && (v as Preferences).matrix) setPrefs(v);
        else load();
      })
      .catch((e) => setError((e as Error).message));
  };
  const categories = [...new Set(prefs?.matrix.map((m) => m.category) ?? [])];
  const channels = [...new Set(prefs?.matrix.map((m) => m.channel) ?? [])];
  return (
    <section>
      <BackLink to={{ page: "dashboard", brand }} label={`← ${t("back")}`} />
      <h1 data-testid="player-title">
        {t("player")} {player}
      </h1>
      <PlayerLookup brand={brand} />
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <h2>{t("preferences")}</h2>
      {prefs && (
        <table className="grid" data-testid="prefs">
          <thead>
            <tr>
              <th />
              {channels.map((ch) => (
                <th key={ch}>{ch}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {categories.map((cat) => (
              <tr key={cat}>
                <th>{cat}</th>
                {channels.map((ch) => {
                  const c = prefs.matrix.find((m) => m.category === cat && m.channel === ch);
                  if (!c) return <td key={ch} />;
                  return (
                    <td key={ch} data-pref={`${cat}/${ch}`} data-state={c.state}>
                      {c.state}
                      {c.mandatory ? ` (${t("mandatory")})` : c.default ? ` (${t("byDefault")})` : ""}
                      {mayChange && !c.mandatory && (
                        <button type="button" className="small" onClick={() => toggle(c)} data-toggle={`${cat}/${ch}`}>
                          {c.state === "granted" ? t("withdraw") : t("grant")}
                        </button>
                      )}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {changed && (
        <p className="ok" role="status" data-testid="pref-changed">
          {t("changedFor")} {changed}
        </p>
      )}
      {prefs?.quietHours && (
        <p>
          {t("quietHours")}: {prefs.quietHours.start}–{prefs.quietHours.end} {prefs.quietHours.timeZone ?? ""}
        </p>
      )}
      <h2>{t("history")}</h2>
      {history && history.length === 0 && <p>{t("noHistory")}</p>}
      {history && history.length > 0 && (
        <table className="grid" data-testid="history">
          <thead>
            <tr>
              <th>{t("time")}</th>
              <th>{t("name")}</th>
              <th>{t("steps")}</th>
              <th>{t("channel")}</th>
              <th>{t("result")}</th>
              <th>{t("reason")}</th>
            </tr>
          </thead>
          <tbody>
            {history.map((e, i) => (
              <tr key={`${e.decisionID}-${i}`} data-result={e.result}>
                <td>{e.local ?? e.time}</td>
                <td>{e.campaign ?? ""}</td>
                <td>{e.step ?? e.kind}</td>
                <td>{e.channel ?? ""}</td>
                <td>{e.result}</td>
                <td title={e.detail}>
                  {e.reason}
                  {e.detail ? ` — ${e.detail}` : ""}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
