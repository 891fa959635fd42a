import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, call } from "./api";
import { useApp } from "./App";
import type { Key } from "./i18n";

export interface GitOpened {
  yaml: string;
  file: string;
  commit: string;
  repository: string;
  branch: string;
  new?: boolean;
}
export interface GitSaved {
  unchanged?: boolean;
  file: string;
  diff: string;
  commit?: string;
  branch?: string;
  pullRequest?: string;
  rebased?: number;
}
export interface Edit {
  yaml: string;
  resourceVersion?: string;
  git?: GitOpened;
}
export interface Cause {
  field?: string;
  message: string;
}
export interface Checked {
  ok: boolean;
  error?: string;
  causes?: Cause[];
  resourceVersion?: string;
  yaml?: string;
  git?: GitSaved;
}

export interface CampaignEdit {
  edit: Edit | null;
  setYAML: (y: string) => void;
  result: Checked | null;
  causes: Cause[];
  busy: boolean;
  send: (what: "validate" | "diff" | "save") => Promise<Checked | null>;
  load: () => void;
}

// useCampaignEdit holds a campaign's YAML as the editor, the graph and the forms edit it:
// the API server checks it as the person (a dry run, again a moment after each change) and
// a save applies it as the person, or commits it to Git where the brand's truth is Git.
// A new campaign (fresh) starts from its template and is created by the save.
export function useCampaignEdit(brand: string, name: string, fresh?: string): CampaignEdit {
  const base = `/api/brands/${encodeURIComponent(brand)}/campaigns/${encodeURIComponent(name)}`;
  const [edit, setEdit] = useState<Edit | null>(fresh !== undefined ? { yaml: fresh } : null);
  const [result, setResult] = useState<Checked | null>(null);
  const [causes, setCauses] = useState<Cause[]>([]);
  const [busy, setBusy] = useState(false);
  const [dirty, setDirty] = useState(0);
  const load = useCallback(() => {
    if (fresh !== undefined) {
      // A new campaign in a brand saved to Git is reviewed as a diff and committed like an
      // edit: where it would go and the commit read (404 elsewhere: it is applied).
      call<GitOpened>("GET", `${base}/git`)
        .then((g) => setEdit((e) => ({ yaml: e?.yaml ?? fresh, git: g })))
        .catch((err) => {
          if ((err as ApiError).status !== 404) setResult({ ok: false, error: (err as Error).message });
        });
      return;
    }
    call<Edit>("GET", `${base}/yaml`)
      .then((e) => {
        setEdit(e);
        setResult(null);
        setCauses([]);
      })
      .catch((e) => setResult({ ok: false, error: (e as Error).message }));
  }, [base, fresh]);
  useEffect(load, [load]);
  const setYAML = useCallback((y: string) => {
    setEdit((e) => (e ? { ...e, yaml: y } : { yaml: y }));
    setResult((r) => (r?.git ? null : r)); // a reviewed diff no longer holds
    setDirty((d) => d + 1);
  }, []);
  const check = async (what: "validate" | "diff" | "save", e: Edit): Promise<Checked> => {
    try {
      return await call<Checked>(what === "save" ? "PUT" : "POST", what === "save" ? base : `${base}/${what}`, e);
    } catch (err) {
      const a = err as ApiError & { body?: Checked };
      return a.body ?? { ok: false, error: a.message };
    }
  };
  // The live check: a dry run a moment after the last change, its causes drawn on the nodes.
  const latest = useRef<Edit | null>(null);
  latest.current = edit;
  useEffect(() => {
    if (dirty === 0) return;
    const timer = setTimeout(async () => {
      const e = latest.current;
      if (!e) return;
      const r = await check("validate", e);
      if (latest.current === e) setCauses(r.ok ? [] : (r.causes ?? (r.error ? [{ message: r.error }] : [])));
    }, 600);
    return () => clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [dirty]);
  const send = async (what: "validate" | "diff" | "save") => {
    if (!edit) return null;
    setBusy(true);
    try {
      const r = await check(what, edit);
      setResult(r);
      setCauses(r.ok ? [] : (r.causes ?? []));
      if (what === "save" && r.ok && r.yaml) setEdit({ yaml: r.yaml, resourceVersion: r.resourceVersion });
      if (what === "save" && r.ok && r.git?.commit && fresh === undefined) {
        // Git moved on: the next edit starts from the commit just made.
        setEdit(await call<Edit>("GET", `${base}/yaml`));
      }
      return r;
    } finally {
      setBusy(false);
    }
  };
  return { edit, setYAML, result, causes, busy, send, load };
}

// Editor is the YAML tab: the text itself, the check, the review of a Git change, the save.
export function Editor({ state, maySave, onSaved }: { state: CampaignEdit; maySave: boolean; onSaved?: (r: Checked) => void }) {
  const { t } = useApp();
  const { edit, setYAML, result, busy, load } = state;
  const send = async (what: "validate" | "diff" | "save") => {
    const r = await state.send(what);
    if (r?.ok && what === "save" && onSaved) onSaved(r);
  };
  if (!edit) return result?.error ? <p className="error">{result.error}</p> : null;
  const git = edit.git;
  return (
    <div className="editor">
      {git && (
        <p className="note" data-testid="git-note">
          {t("gitNote")}: <code>{git.repository}</code> <code>{git.branch}</code> <code>{git.file}</code> @ <code>{git.commit.slice(0, 12)}</code>
        </p>
      )}
      <textarea
        aria-label="YAML"
        data-testid="yaml"
        spellCheck={false}
        rows={24}
        value={edit.yaml}
        onChange={(e) => setYAML(e.target.value)}
      />
      <div className="actions">
        <button disabled={busy} onClick={() => send("validate")} data-testid="validate">
          {t("validate")}
        </button>
        {maySave && git && (
          <button disabled={busy} onClick={() => send("diff")} data-testid="diff">
            {t("showDiff")}
          </button>
        )}
        {maySave && (
          <button disabled={busy || (!!git && !result?.git?.diff)} onClick={() => send("save")} data-testid="save">
            {git ? t("commit") : t("save")}
          </button>
        )}
        <button disabled={busy} onClick={load}>
          {t("reload")}
        </button>
      </div>
      {result && (
        <div role="status" data-testid="check" className={result.ok ? "ok" : "error"}>
          {result.ok ? (result.git ? gitResult(result.git, t) : t("valid")) : result.error}
          {result.causes && (
            <ul>
              {result.causes.map((c, i) => (
                <li key={i} data-field={c.field}>
                  {c.field && <code>{c.field}</code>} {c.message}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      {result?.git?.diff && !result.git.commit && (
        <pre className="diff" data-testid="diff-text">
          {result.git.diff}
        </pre>
      )}
    </div>
  );
}

function gitResult(g: GitSaved, t: (k: Key) => string) {
  if (g.unchanged) return t("unchanged");
  if (!g.commit) return t("valid");
  return (
    <span data-testid="committed">
      {t("committed")}: <code>{g.commit.slice(0, 12)}</code> → <code>{g.branch}</code>
      {g.rebased ? ` (${t("rebased")})` : ""}
      {g.pullRequest && (
        <>
          {" "}
          <a href={g.pullRequest} target="_blank" rel="noreferrer">
            {t("pullRequest")}
          </a>
        </>
      )}
    </span>
  );
}
