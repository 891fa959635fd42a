import { useState } from "react";
import { call } from "./api";
import { useApp } from "./App";
import { count } from "./format";

interface PreviewResult {
  audience: number;
  wouldSend: number;
  byChannel: Record<string, number>;
  suppressed: Record<string, number>;
  missing?: number[];
  messageCost?: string;
  currency?: string;
}

const admin = (brand: string, path: string) => `/api/brands/${encodeURIComponent(brand)}/admin/${path}`;

// AudiencePreview asks the dispatcher (as the person) who the saved campaign would reach
// now: the audience, the sends by channel, and what routing would hold back and why.
export function AudiencePreview({ brand, name }: { brand: string; name: string }) {
  const { t, lang } = useApp();
  const [p, setP] = useState<PreviewResult | null>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const run = () => {
    setBusy(true);
    call<PreviewResult>("GET", admin(brand, `campaigns/${encodeURIComponent(name)}/preview`))
      .then((r) => {
        setP(r);
        setError("");
      })
      .catch((e) => setError((e as Error).message))
      .finally(() => setBusy(false));
  };
  return (
    <div className="preview" data-testid="preview">
      <button type="button" onClick={run} disabled={busy} data-testid="preview-run">
        {t("previewAudience")}
      </button>
      {error && <p className="error">{error}</p>}
      {p && (
        <dl className="figures small">
          <div>
            <dt>{t("audience")}</dt>
            <dd data-testid="preview-audience">{count(lang, p.audience)}</dd>
          </div>
          <div>
            <dt>{t("wouldSend")}</dt>
            <dd>{count(lang, p.wouldSend)}</dd>
          </div>
          {p.messageCost && (
            <div>
              <dt>{t("messageCost")}</dt>
              <dd data-testid="preview-cost">
                {p.messageCost} {p.currency}
              </dd>
            </div>
          )}
          {Object.entries(p.byChannel).map(([ch, n]) => (
            <div key={ch}>
              <dt>{ch}</dt>
              <dd>{count(lang, n)}</dd>
            </div>
          ))}
          {Object.entries(p.suppressed).map(([why, n]) => (
            <div key={why}>
              <dt>{why}</dt>
              <dd>{count(lang, n)}</dd>
            </div>
          ))}
        </dl>
      )}
      <p className="note">{t("previewOfSaved")}</p>
    </div>
  );
}

// TestSend sends a send step's message to one seed player now, through the whole routing
// (the dispatcher's test send; the person needs the campaigns/testsend right).
export function TestSend({ brand, name, step }: { brand: string; name: string; step: string }) {
  const { t } = useApp();
  const [player, setPlayer] = useState("");
  const [answer, setAnswer] = useState("");
  const [error, setError] = useState("");
  const send = () =>
    call<{ intentId: string }>("POST", admin(brand, `campaigns/${encodeURIComponent(name)}/testsend`), { player, step })
      .then((r) => {
        setAnswer(`${t("testSent")}: ${r.intentId}`);
        setError("");
      })
      .catch((e) => {
        setError((e as Error).message);
        setAnswer("");
      });
  return (
    <div className="testsend" data-testid="testsend">
      <label className="field">
        <span>{t("testPlayer")}</span>
        <input value={player} onChange={(e) => setPlayer(e.target.value)} data-testid="testsend-player" />
      </label>
      <button type="button" disabled={!player} onClick={send} data-testid="testsend-run">
        {t("testSend")}
      </button>
      {answer && (
        <p className="ok" role="status">
          {answer}
        </p>
      )}
      {error && <p className="error">{error}</p>}
    </div>
  );
}
