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
      {can(access, "admin.crm.croupier.dev", "players/explain", "get") && <Explain brand={brand} player={player} />}
      {can(access, "admin.crm.croupier.dev", "consent/report", "get") && <ConsentCheck brand={brand} player={player} />}
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

interface StepResult {
  step: number;
  name: string;
  passed: boolean;
  reason?: string;
  detail?: string;
}
interface Explanation {
  campaign: string;
  step: string;
  decision: { result: string; reason: string; step: number; channel?: string; detail?: string; sendAt?: string; trace?: StepResult[] };
}

// Explain answers "why would (not) this campaign reach the player now": the routing
// decision the dispatcher would make, every precedence step with its verdict.
function Explain({ brand, player }: { brand: string; player: string }) {
  const { t } = useApp();
  const [campaign, setCampaign] = useState("");
  const [ex, setEx] = useState<Explanation | null>(null);
  const [error, setError] = useState("");
  const run = (e: React.FormEvent) => {
    e.preventDefault();
    setError("");
    call<Explanation>("GET", admin(brand, `players/${encodeURIComponent(player)}/explain?campaign=${encodeURIComponent(campaign)}`))
      .then(setEx)
      .catch((err) => {
        setEx(null);
        setError((err as Error).message);
      });
  };
  return (
    <div data-testid="explain">
      <h2>{t("explainTitle")}</h2>
      <form onSubmit={run} className="actions">
        <input value={campaign} onChange={(e) => setCampaign(e.target.value.trim())} placeholder="welcome-series" required pattern="[a-z0-9][-a-z0-9]*" data-testid="explain-campaign" />
        <button type="submit" data-testid="explain-run">
          {t("explain")}
        </button>
      </form>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {ex && (
        <>
          <p data-testid="explain-verdict" data-result={ex.decision.result}>
            <strong>{ex.decision.result}</strong> {ex.decision.reason} {ex.decision.channel ? `· ${ex.decision.channel}` : ""} {ex.decision.detail ? `· ${ex.decision.detail}` : ""}
          </p>
          <table className="grid narrow" data-testid="explain-trace">
            <tbody>
              {(ex.decision.trace ?? []).map((s) => (
                <tr key={s.step} data-step={s.step} className={s.passed ? "" : "warn"}>
                  <td className="num">{s.step}</td>
                  <td>{s.name}</td>
                  <td>{s.passed ? "✓" : "✗"}</td>
                  <td>{[s.reason, s.detail].filter(Boolean).join(": ")}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </div>
  );
}

interface ConsentReport {
  withdrawals: number;
  addressSuppressions: number;
  marketingSendsChecked: number;
  violations: { channel: string; withdrawn: string; campaign: string; sent: string; decisionID: string }[];
  ok: boolean;
}

// ConsentCheck proves, from the consent ledger and the dispatcher's records, that no
// marketing reached the player after a withdrawal.
function ConsentCheck({ brand, player }: { brand: string; player: string }) {
  const { t } = useApp();
  const [rep, setRep] = useState<ConsentReport | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    call<ConsentReport>("GET", admin(brand, `consent/report?player=${encodeURIComponent(player)}`))
      .then(setRep)
      .catch((e) => setError((e as Error).message));
  }, [brand, player]);
  return (
    <div data-testid="consent-check">
      <h2>{t("consentCheck")}</h2>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {rep && (
        <p data-testid="consent-verdict" data-ok={rep.ok ? "1" : "0"} className={rep.ok ? "" : "error"}>
          {rep.ok ? t("consentOK") : t("consentViolations")} · {t("withdrawals")}: {rep.withdrawals} · {t("sendsChecked")}: {rep.marketingSendsChecked}
        </p>
      )}
      {rep && rep.violations.length > 0 && (
        <table className="grid narrow">
          <tbody>
            {rep.violations.map((v) => (
              <tr key={v.decisionID}>
                <td>{v.channel}</td>
                <td>{v.campaign}</td>
                <td>{v.withdrawn}</td>
                <td>{v.sent}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
