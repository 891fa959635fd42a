import { useEffect, useRef, useState } from "react";
import { call, can, type ApiError } from "./api";
import { useApp } from "./App";
import { BackLink } from "./BackLink";
import { useAccess } from "./Dashboard";
import type { Checked } from "./Editor";
import { count } from "./format";
import { fields, fromCEL, ops, toCEL, type Cond } from "./segrule";

interface SegmentRow {
  name: string;
  description?: string;
  rule: string;
  memberCount?: number;
  evaluated?: string;
  ready?: string;
  message?: string;
  resourceVersion: string;
  gitOps?: string;
}

const dns = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

// SegmentsPage lists the brand's Segments with their member counts (the controller's last
// evaluation) and edits one: a builder for the common fields or the rule as CEL, with the
// number of players it selects now counted by the dispatcher as it is written.
export function SegmentsPage({ brand, segment }: { brand: string; segment?: string }) {
  const { t, lang, go } = useApp();
  const access = useAccess(brand);
  const [rows, setRows] = useState<SegmentRow[] | null>(null);
  const [error, setError] = useState("");
  const [newName, setNewName] = useState("");
  const load = () =>
    call<SegmentRow[]>("GET", `/api/brands/${encodeURIComponent(brand)}/segments`)
      .then(setRows)
      .catch((e) => setError((e as Error).message));
  useEffect(() => {
    load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [brand, segment]);
  const mayEdit = can(access, "crm.croupier.dev", "segments", "patch");
  if (segment) {
    const row = rows?.find((r) => r.name === segment);
    if (!rows) return null;
    return <SegmentEditor brand={brand} name={segment} row={row} mayEdit={mayEdit} onSaved={load} />;
  }
  return (
    <section>
      <BackLink to={{ page: "dashboard", brand }} label={`← ${t("back")}`} />
      <h1>
        {t("segments")} · {brand}
      </h1>
      {error && <p className="error">{error}</p>}
      {mayEdit && (
        <form
          className="actions"
          onSubmit={(e) => {
            e.preventDefault();
            if (dns.test(newName)) go({ page: "segments", brand, segment: newName });
          }}
        >
          <input value={newName} onChange={(e) => setNewName(e.target.value.toLowerCase())} placeholder={t("name")} data-testid="new-segment-name" />
          <button type="submit" disabled={!dns.test(newName)} data-testid="new-segment">
            + {t("newSegment")}
          </button>
        </form>
      )}
      {rows && (
        <table className="grid" data-testid="segments">
          <thead>
            <tr>
              <th>{t("name")}</th>
              <th>{t("description")}</th>
              <th className="num">{t("members")}</th>
              <th>{t("evaluated")}</th>
              <th>{t("ready")}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.name} data-segment={r.name}>
                <td>
                  <a
                    href={`/brands/${brand}/segments/${r.name}`}
                    onClick={(e) => {
                      e.preventDefault();
                      go({ page: "segments", brand, segment: r.name });
                    }}
                  >
                    {r.name}
                  </a>
                </td>
                <td>{r.description}</td>
                <td className="num">{count(lang, r.memberCount)}</td>
                <td>{r.evaluated ? new Date(r.evaluated).toLocaleString(lang) : "–"}</td>
                <td title={r.message}>{r.ready === "True" ? "✓" : r.ready ? r.message : "–"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function SegmentEditor({ brand, name, row, mayEdit, onSaved }: { brand: string; name: string; row?: SegmentRow; mayEdit: boolean; onSaved: () => void }) {
  const { t, lang } = useApp();
  const [rule, setRule] = useState(row?.rule ?? "true");
  const [description, setDescription] = useState(row?.description ?? "");
  const [tab, setTab] = useState<"builder" | "cel">(fromCEL(row?.rule ?? "true") ? "builder" : "cel");
  const [counted, setCounted] = useState<{ count?: number; error?: string; missing?: number[] } | null>(null);
  const [result, setResult] = useState<Checked | null>(null);
  const conds = fromCEL(rule);
  const seq = useRef(0);
  useEffect(() => {
    const n = ++seq.current;
    const timer = setTimeout(() => {
      call<{ count: number; missing?: number[] }>("POST", `/api/brands/${encodeURIComponent(brand)}/admin/segments/count`, { rule })
        .then((c) => n === seq.current && setCounted(c))
        .catch((e) => n === seq.current && setCounted({ error: (e as Error).message }));
    }, 400);
    return () => clearTimeout(timer);
  }, [brand, rule]);
  const setConds = (cs: Cond[]) => setRule(toCEL(cs));
  const save = async () => {
    try {
      const r = await call<Checked & SegmentRow>("PUT", `/api/brands/${encodeURIComponent(brand)}/segments/${encodeURIComponent(name)}`, {
        rule,
        description,
        resourceVersion: row?.resourceVersion ?? "",
      });
      setResult({ ok: true, git: r.git });
      onSaved();
    } catch (e) {
      const a = e as ApiError & { body?: Checked };
      setResult(a.body ?? { ok: false, error: a.message });
    }
  };
  return (
    <section>
      <BackLink to={{ page: "segments", brand }} label={`← ${t("segments")}`} />
      <h1 data-testid="segment-title">
        {t("segment")} {name} {!row && <span className="badge">{t("new")}</span>}
      </h1>
      <label className="field">
        <span>{t("description")}</span>
        <input readOnly={!mayEdit} value={description} onChange={(e) => setDescription(e.target.value)} data-testid="segment-description" />
      </label>
      <div className="tabs" role="tablist">
        <button type="button" role="tab" aria-selected={tab === "builder"} className={tab === "builder" ? "active" : ""} disabled={!conds} onClick={() => setTab("builder")}>
          {t("builder")}
        </button>
        <button type="button" role="tab" aria-selected={tab === "cel"} className={tab === "cel" ? "active" : ""} onClick={() => setTab("cel")} data-testid="cel-tab">
          CEL
        </button>
      </div>
      {tab === "builder" && conds ? (
        <div className="conds" data-testid="conds">
          {conds.map((c, i) => {
            const f = fields.find((x) => x.name === c.field)!;
            const upd = (p: Partial<Cond>) => setConds(conds.map((x, j) => (j === i ? { ...x, ...p } : x)));
            return (
              <div key={i} className="cond" data-cond={i}>
                <select disabled={!mayEdit} value={c.field} onChange={(e) => {
                  const nf = fields.find((x) => x.name === e.target.value)!;
                  upd({ field: nf.name, op: nf.type === "bool" ? "is" : "==", value: nf.options?.[0] ?? "" });
                }}>
                  {fields.map((x) => (
                    <option key={x.name} value={x.name}>
                      {x.name}
                    </option>
                  ))}
                </select>
                {f.type === "bool" ? (
                  <select disabled={!mayEdit} value={c.op} onChange={(e) => upd({ op: e.target.value })}>
                    <option value="is">{t("isTrue")}</option>
                    <option value="not">{t("isFalse")}</option>
                  </select>
                ) : (
                  <>
                    <select disabled={!mayEdit} value={c.op} onChange={(e) => upd({ op: e.target.value })}>
                      {(f.type === "string" || f.type === "enum" ? ops.slice(0, 2) : ops).map((o) => (
                        <option key={o} value={o}>
                          {o}
                        </option>
                      ))}
                    </select>
                    {f.options ? (
                      <select disabled={!mayEdit} value={c.value} onChange={(e) => upd({ value: e.target.value })}>
                        {f.options.map((o) => (
                          <option key={o}>{o}</option>
                        ))}
                      </select>
                    ) : (
                      <input readOnly={!mayEdit} value={c.value} inputMode={f.type === "string" ? "text" : "decimal"} onChange={(e) => upd({ value: e.target.value })} data-cond-value={i} />
                    )}
                  </>
                )}
                {mayEdit && (
                  <button type="button" className="small" onClick={() => setConds(conds.filter((_, j) => j !== i))}>
                    −
                  </button>
                )}
              </div>
            );
          })}
          {mayEdit && (
            <button type="button" onClick={() => setConds([...conds, { field: "country", op: "==", value: "AZ" }])} data-testid="add-cond">
              + {t("condition")}
            </button>
          )}
          <p className="note">
            <code data-testid="cel-of-builder">{rule}</code>
          </p>
        </div>
      ) : (
        <textarea readOnly={!mayEdit} rows={4} spellCheck={false} value={rule} onChange={(e) => setRule(e.target.value)} data-testid="segment-cel" />
      )}
      <p data-testid="segment-count" className={counted?.error ? "error" : ""}>
        {counted?.error ?? (counted ? `${t("playersNow")}: ${count(lang, counted.count)}${counted.missing?.length ? ` (${t("partial")})` : ""}` : "…")}
      </p>
      {mayEdit && (
        <button type="button" onClick={save} data-testid="segment-save">
          {t("save")}
        </button>
      )}
      {result && (
        <p role="status" className={result.ok ? "ok" : "error"} data-testid="segment-result">
          {result.ok ? (result.git?.commit ? `${t("committed")}: ${result.git.commit.slice(0, 12)}` : t("saved")) : result.error}
        </p>
      )}
    </section>
  );
}
