import { useEffect, useMemo, useRef, useState } from "react";
import { call } from "./api";
import { useApp } from "./App";
import { BlockEditor } from "./BlockEditor";
import { fromHTML, newBlock, toHTML } from "./emailblocks";
import { setField } from "./flowedit";

interface Message {
  channel: string;
  locale: string;
  subject?: string;
  body?: string;
  bodyFrom?: { name: string; key: string };
  format?: string;
  buttonText?: string;
  deepLink?: string;
}
interface Content {
  name: string;
  messages?: Message[];
}
interface Rendered {
  channel: string;
  locale: string;
  subject?: string;
  text?: string;
  html?: string;
  error?: string;
  field?: string;
  sms?: { encoding: string; segments: number; characters: number };
  cost?: string;
  currency?: string;
  provider?: string;
}
interface Answer {
  messages: Rendered[];
  languages: string[];
  defaultLanguage: string;
  fallback: Record<string, Record<string, string>>;
  player?: string;
}

const subjectChannels = new Set(["email", "push", "webPush", "inApp"]);

// Studio edits a campaign's contents: each channel's messages side by side in the brand's
// languages, each rendered by the dispatcher's own renderer for a chosen player or a sample
// profile (email at desktop and mobile widths, push as iOS and Android show it, SMS with its
// encoding and segments, in-app and Viber as cards), and for each language without a
// message the locale its players would get instead, before anything is saved.
export function Studio({ brand, campaign, contents, yaml, setYAML }: { brand: string; campaign: string; contents: Content[]; yaml: string; setYAML?: (y: string) => void }) {
  const { t } = useApp();
  const [ci, setCi] = useState(0);
  const [player, setPlayer] = useState("");
  const [firstName, setFirstName] = useState("Aysel");
  const [answer, setAnswer] = useState<Answer | null>(null);
  const [error, setError] = useState("");
  const [width, setWidth] = useState<"desktop" | "mobile">("desktop");
  const content = contents[Math.min(ci, contents.length - 1)];
  const stored = useMemo(() => content?.messages ?? [], [content]);
  // Bodies kept in ConfigMaps (bodyFrom): read as the person, previewed and edited here,
  // saved to their ConfigMap (or its document in Git).
  const [bodies, setBodies] = useState<Record<string, StoredBody>>({});
  useEffect(() => {
    for (const m of stored) {
      if (!m.bodyFrom || m.body) continue;
      const k = `${m.bodyFrom.name}/${m.bodyFrom.key}`;
      if (bodies[k]) continue;
      setBodies((b) => ({ ...b, [k]: { value: "", draft: "", loading: true } }));
      call<{ value: string; resourceVersion: string }>("GET", `/api/brands/${encodeURIComponent(brand)}/bodies/${encodeURIComponent(m.bodyFrom.name)}/${encodeURIComponent(m.bodyFrom.key)}`)
        .then((r) => setBodies((b) => ({ ...b, [k]: { value: r.value, draft: r.value, rv: r.resourceVersion } })))
        .catch((e) => setBodies((b) => ({ ...b, [k]: { value: "", draft: "", error: (e as Error).message } })));
    }
  }, [stored, brand, bodies]);
  const messages = useMemo(
    () =>
      stored.map((m) => {
        const b = m.bodyFrom && !m.body ? bodies[`${m.bodyFrom.name}/${m.bodyFrom.key}`] : undefined;
        if (!b || b.loading || b.error) return m;
        const { bodyFrom: _omit, ...rest } = m;
        void _omit;
        return { ...rest, body: b.draft };
      }),
    [stored, bodies],
  );
  const saveBody = async (k: string) => {
    const b = bodies[k];
    const [cm, ...rest] = k.split("/");
    try {
      const r = await call<{ resourceVersion?: string; git?: { commit?: string; unchanged?: boolean } }>(
        "PUT",
        `/api/brands/${encodeURIComponent(brand)}/bodies/${encodeURIComponent(cm)}/${encodeURIComponent(rest.join("/"))}`,
        { value: b.draft, resourceVersion: b.rv },
      );
      setBodies((x) => ({ ...x, [k]: { ...x[k], value: b.draft, rv: r.resourceVersion ?? x[k].rv, status: r.git?.commit ? `${t("committed")}: ${r.git.commit.slice(0, 12)}` : t("saved"), error: undefined } }));
    } catch (e) {
      setBodies((x) => ({ ...x, [k]: { ...x[k], error: (e as Error).message, status: undefined } }));
    }
  };
  const setDraft = (k: string, v: string) => setBodies((x) => ({ ...x, [k]: { ...x[k], draft: v, status: undefined } }));
  const key = JSON.stringify([messages, player, firstName]);
  const seq = useRef(0);
  useEffect(() => {
    if (messages.length === 0) return;
    const n = ++seq.current;
    const timer = setTimeout(() => {
      const body = player ? { campaign, player, messages } : { campaign, sample: { firstName }, messages };
      call<Answer>("POST", `/api/brands/${encodeURIComponent(brand)}/admin/render`, body)
        .then((a) => {
          if (n === seq.current) {
            setAnswer(a);
            setError("");
          }
        })
        .catch((e) => n === seq.current && setError((e as Error).message));
    }, 350);
    return () => clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, brand, campaign]);
  if (!content) return <p>{t("noContents")}</p>;
  const channels = [...new Set(messages.map((m) => m.channel))];
  const langs = answer?.languages?.length ? answer.languages : [...new Set(messages.map((m) => m.locale))];
  const set = (mi: number, field: string, v: string) => setYAML?.(setField(yaml, ["spec", "contents", ci, "messages", mi, field], v));
  const add = (channel: string, locale: string) => {
    const from = messages.find((m) => m.channel === channel && m.locale === answer?.fallback[channel]?.[locale]) ?? messages.find((m) => m.channel === channel);
    const copy: Message = { channel, locale, ...(from?.subject ? { subject: from.subject } : {}), body: from?.body ?? "", ...(from?.format ? { format: from.format } : {}) };
    setYAML?.(setField(yaml, ["spec", "contents", ci, "messages", messages.length], copy));
  };
  return (
    <div className="studio" data-testid="studio">
      <div className="tabs" role="tablist">
        {contents.map((c, i) => (
          <button key={c.name} type="button" role="tab" aria-selected={i === ci} className={i === ci ? "active" : ""} onClick={() => setCi(i)} data-content={c.name}>
            {c.name}
          </button>
        ))}
      </div>
      <div className="actions">
        <label>
          {t("testPlayer")} <input value={player} onChange={(e) => setPlayer(e.target.value.trim())} placeholder="p-100000" data-testid="studio-player" />
        </label>
        {!player && (
          <label>
            firstName <input value={firstName} onChange={(e) => setFirstName(e.target.value)} data-testid="studio-firstname" />
          </label>
        )}
        <label>
          <select value={width} onChange={(e) => setWidth(e.target.value as "desktop" | "mobile")} data-testid="studio-width">
            <option value="desktop">{t("desktop")}</option>
            <option value="mobile">{t("mobile")}</option>
          </select>
        </label>
      </div>
      {error && <p className="error">{error}</p>}
      {channels.map((ch) => (
        <div key={ch} className="studio-channel" data-channel={ch}>
          <h3>{ch}</h3>
          <div className="studio-row" style={{ gridTemplateColumns: `repeat(${langs.length}, minmax(16rem, 1fr))` }}>
            {langs.map((l) => {
              const mi = messages.findIndex((m) => m.channel === ch && m.locale === l);
              if (mi < 0) {
                const gets = answer?.fallback[ch]?.[l];
                return (
                  <div key={l} className="studio-cell missing" data-locale={l}>
                    <h4>{l}</h4>
                    <p className="note" data-testid="missing">
                      {gets ? `${t("missingLocale")} ${gets}` : t("missingNothing")}
                    </p>
                    {setYAML && (
                      <button type="button" onClick={() => add(ch, l)} data-add-locale={`${ch}/${l}`}>
                        + {l}
                      </button>
                    )}
                  </div>
                );
              }
              const m = stored[mi];
              const r = answer?.messages[mi];
              return (
                <div key={l} className="studio-cell" data-locale={l}>
                  <h4>{l}</h4>
                  {subjectChannels.has(ch) && (
                    <input readOnly={!setYAML} value={m.subject ?? ""} placeholder={t("subject")} onChange={(e) => set(mi, "subject", e.target.value)} data-field={`messages[${mi}].subject`} />
                  )}
                  {m.bodyFrom && !m.body ? (
                    <ConfigMapBody
                      k={`${m.bodyFrom.name}/${m.bodyFrom.key}`}
                      b={bodies[`${m.bodyFrom.name}/${m.bodyFrom.key}`]}
                      email={ch === "email"}
                      editable={!!setYAML}
                      setDraft={setDraft}
                      save={saveBody}
                    />
                  ) : ch === "email" && setYAML && fromHTML(m.body ?? "") ? (
                    <>
                      <BlockEditor blocks={fromHTML(m.body ?? "")!} onChange={(html) => set(mi, "body", html)} />
                      <details>
                        <summary>{t("editHTML")}</summary>
                        <textarea rows={5} value={m.body ?? ""} onChange={(e) => set(mi, "body", e.target.value)} data-field={`messages[${mi}].body`} />
                      </details>
                    </>
                  ) : (
                    <>
                      <textarea readOnly={!setYAML} rows={5} value={m.body ?? ""} onChange={(e) => set(mi, "body", e.target.value)} data-field={`messages[${mi}].body`} />
                      {ch === "email" && setYAML && (
                        <button
                          type="button"
                          data-use-blocks={`${ch}/${l}`}
                          onClick={() => {
                            let y = setField(yaml, ["spec", "contents", ci, "messages", mi, "body"], toHTML([newBlock("heading"), { kind: "text", text: m.format === "html" ? "" : (m.body ?? "") }]));
                            y = setField(y, ["spec", "contents", ci, "messages", mi, "format"], "html");
                            setYAML(y);
                          }}
                        >
                          {t("useBlocks")}
                        </button>
                      )}
                    </>
                  )}
                  {r?.error && (
                    <p className="error" data-testid="render-error">
                      {r.error}
                    </p>
                  )}
                  {r && !r.error && <Frame ch={ch} r={r} m={m} width={width} />}
                  {r?.cost && (
                    <p className="note" data-testid="message-cost">
                      {t("costPerMessage")}: {r.cost} {r.currency} ({r.provider})
                    </p>
                  )}
                </div>
              );
            })}
          </div>
        </div>
      ))}
    </div>
  );
}

interface StoredBody {
  value: string;
  draft: string;
  rv?: string;
  loading?: boolean;
  error?: string;
  status?: string;
}

// ConfigMapBody edits a body kept in a ConfigMap: as blocks when the block editor wrote it,
// else as text; saved to the ConfigMap (or its document in Git) as the person.
function ConfigMapBody({ k, b, email, editable, setDraft, save }: { k: string; b?: StoredBody; email: boolean; editable: boolean; setDraft: (k: string, v: string) => void; save: (k: string) => void }) {
  const { t } = useApp();
  const blocks = email && b ? fromHTML(b.draft) : null;
  return (
    <div className="configmap-body" data-body={k}>
      <p className="note">
        {t("bodyInConfigMap")} {k}
      </p>
      {b?.loading && <p className="note">…</p>}
      {b && !b.loading && !b.error && (
        <>
          {blocks && editable ? (
            <BlockEditor blocks={blocks} onChange={(html) => setDraft(k, html)} />
          ) : (
            <textarea readOnly={!editable} rows={6} value={b.draft} onChange={(e) => setDraft(k, e.target.value)} data-body-text={k} />
          )}
          {editable && (
            <button type="button" disabled={b.draft === b.value} onClick={() => save(k)} data-save-body={k}>
              {t("saveToConfigMap")} {k.split("/")[0]}
            </button>
          )}
        </>
      )}
      {b?.status && (
        <p className="note" role="status" data-testid="body-saved">
          {b.status}
        </p>
      )}
      {b?.error && (
        <p className="error" role="alert">
          {b.error}
        </p>
      )}
    </div>
  );
}

// Frame shows a rendered message the way its channel shows it. Text is text; an email's
// HTML goes into a sandboxed frame without scripts.
function Frame({ ch, r, m, width }: { ch: string; r: Rendered; m: Message; width: "desktop" | "mobile" }) {
  const { t } = useApp();
  if (ch === "email")
    return (
      <div className="frame email" data-testid="preview-email">
        <div className="email-subject">{r.subject}</div>
        <iframe title="email" sandbox="" srcDoc={r.html || `<pre>${escapeHTML(r.text ?? "")}</pre>`} style={{ width: width === "desktop" ? 600 : 375, maxWidth: "100%" }} />
      </div>
    );
  if (ch === "push" || ch === "webPush")
    return (
      <div className="frames" data-testid="preview-push">
        {["iOS", "Android"].map((os) => (
          <div key={os} className={`frame push ${os.toLowerCase()}`}>
            <div className="os">{os}</div>
            <div className="push-title">{r.subject}</div>
            <div className="push-body">{r.text}</div>
          </div>
        ))}
      </div>
    );
  if (ch === "sms")
    return (
      <div className="frame sms" data-testid="preview-sms">
        <div className="bubble">{r.text}</div>
        {r.sms && (
          <div className="note" data-testid="sms-facts">
            {r.sms.encoding}, {r.sms.segments} {t("smsSegments")}, {r.sms.characters} {t("characters")}
          </div>
        )}
      </div>
    );
  return (
    <div className={`frame card ${ch}`} data-testid={`preview-${ch}`}>
      {r.subject && <div className="push-title">{r.subject}</div>}
      <div>{r.text}</div>
      {m.buttonText && <button type="button">{m.buttonText}</button>}
    </div>
  );
}

function escapeHTML(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}
