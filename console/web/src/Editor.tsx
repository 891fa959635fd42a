import { useEffect, useState } from "react";
import { ApiError, call } from "./api";
import { useApp } from "./App";

interface Edit {
  yaml: string;
  resourceVersion?: string;
}
interface Checked {
  ok: boolean;
  error?: string;
  causes?: { field?: string; message: string }[];
  resourceVersion?: string;
  yaml?: string;
}

// Editor edits a campaign's YAML: the API server checks it (a dry run as the person) and
// a save applies it as the person; every rule is the API server's.
export function Editor({ brand, name, maySave, onYAML }: { brand: string; name: string; maySave: boolean; onYAML?: (y: string) => void }) {
  const { t } = useApp();
  const base = `/api/brands/${encodeURIComponent(brand)}/campaigns/${encodeURIComponent(name)}`;
  const [edit, setEdit] = useState<Edit | null>(null);
  const [result, setResult] = useState<Checked | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (edit && onYAML) onYAML(edit.yaml);
  }, [edit, onYAML]);
  const load = () =>
    call<Edit>("GET", `${base}/yaml`)
      .then((e) => {
        setEdit(e);
        setResult(null);
      })
      .catch((e) => setResult({ ok: false, error: (e as Error).message }));
  useEffect(() => {
    load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [base]);
  const send = async (method: "POST" | "PUT") => {
    if (!edit) return;
    setBusy(true);
    try {
      const r = await call<Checked>(method, method === "POST" ? `${base}/validate` : base, edit);
      setResult(r);
      if (method === "PUT" && r.yaml) setEdit({ yaml: r.yaml, resourceVersion: r.resourceVersion });
    } catch (e) {
      const err = e as ApiError & { body?: Checked };
      setResult(err.body ?? { ok: false, error: err.message });
    } finally {
      setBusy(false);
    }
  };
  if (!edit) return result?.error ? <p className="error">{result.error}</p> : null;
  return (
    <div className="editor">
      <textarea
        aria-label="YAML"
        data-testid="yaml"
        spellCheck={false}
        rows={24}
        value={edit.yaml}
        onChange={(e) => setEdit({ ...edit, yaml: e.target.value })}
      />
      <div className="actions">
        <button disabled={busy} onClick={() => send("POST")} data-testid="validate">
          {t("validate")}
        </button>
        {maySave && (
          <button disabled={busy} onClick={() => send("PUT")} data-testid="save">
            {t("save")}
          </button>
        )}
        <button disabled={busy} onClick={load}>
          {t("reload")}
        </button>
      </div>
      {result && (
        <div role="status" data-testid="check" className={result.ok ? "ok" : "error"}>
          {result.ok ? t("valid") : result.error}
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
    </div>
  );
}
