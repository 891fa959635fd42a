import type { ReactNode } from "react";
import { fieldName, scalar, type Schema } from "./schema";

export type Setter = (path: (string | number)[], value: unknown) => void;

// Field draws a form for one field of the Campaign from its schema: objects as groups,
// lists of objects as rows to add and remove, lists of values as a comma-separated line,
// enums as a choice, the rest as text. Each change is one setField on the YAML; the API
// server's causes appear under the field they name.
export function Field({ s, path, value, set, causes, name, readOnly }: { s: Schema; path: (string | number)[]; value: unknown; set: Setter; causes: Map<string, string>; name: string; readOnly?: boolean }) {
  const f = fieldName(path);
  const err = causes.get(f);
  const note = err ? (
    <span className="field-error" data-cause={f}>
      {err}
    </span>
  ) : null;
  if (s.type === "object" && s.properties) {
    const v = (value ?? {}) as Record<string, unknown>;
    return (
      <details className="group" open={value !== undefined} data-field={f}>
        <summary title={s.description}>{name}</summary>
        {Object.entries(s.properties).map(([k, ps]) => (
          <Field key={k} s={ps} path={[...path, k]} value={v[k]} set={set} causes={causes} name={k} readOnly={readOnly} />
        ))}
        {note}
      </details>
    );
  }
  if (s.type === "array" && s.items) {
    const items = Array.isArray(value) ? (value as unknown[]) : [];
    if (s.items.type === "object") {
      return (
        <fieldset className="group" data-field={f}>
          <legend title={s.description}>{name}</legend>
          {items.map((it, i) => (
            <div key={i} className="item">
              <Field s={s.items!} path={[...path, i]} value={it} set={set} causes={causes} name={`${name} ${i + 1}`} readOnly={readOnly} />
              {!readOnly && (
                <button type="button" className="small" onClick={() => set(path, items.filter((_, j) => j !== i))} aria-label={`remove ${name} ${i + 1}`}>
                  −
                </button>
              )}
            </div>
          ))}
          {!readOnly && (
            <button type="button" className="small" data-add={f} onClick={() => set(path, [...items, {}])}>
              + {name}
            </button>
          )}
          {note}
        </fieldset>
      );
    }
    return row(
      name,
      s,
      f,
      <input readOnly={readOnly} data-field={f} value={items.join(", ")} onChange={(e) => set(path, e.target.value.split(",").map((x) => x.trim()).filter(Boolean))} />,
      note,
    );
  }
  if (s.type === "object") return null; // free-form maps: the YAML tab
  if (s.type === "boolean")
    return row(name, s, f, <input type="checkbox" disabled={readOnly} data-field={f} checked={value === true} onChange={(e) => set(path, e.target.checked ? true : undefined)} />, note);
  if (s.enum)
    return row(
      name,
      s,
      f,
      <select disabled={readOnly} data-field={f} value={value === undefined ? "" : String(value)} onChange={(e) => set(path, e.target.value === "" ? undefined : e.target.value)}>
        <option value="">–</option>
        {s.enum.map((o) => (
          <option key={String(o)} value={String(o)}>
            {String(o)}
          </option>
        ))}
      </select>,
      note,
    );
  return row(
    name,
    s,
    f,
    <input readOnly={readOnly} data-field={f} value={value === undefined || value === null ? "" : String(value)} onChange={(e) => set(path, scalar(s, e.target.value))} />,
    note,
  );
}

function row(name: string, s: Schema, f: string, input: ReactNode, note: ReactNode) {
  return (
    <label className={`field${note ? " invalid" : ""}`} title={s.description} data-row={f}>
      <span>{name}</span>
      {input}
      {note}
    </label>
  );
}
