import { useEffect, useState } from "react";
import { call } from "./api";
import { useApp } from "./App";
import { BackLink } from "./BackLink";

interface ReportRun {
  id: string;
  scheduled: string;
  generated?: string;
  sent?: string;
  error?: string;
  files?: string[];
}

interface ReportRow {
  name: string;
  title?: string;
  cron: string;
  timeZone: string;
  formats: string[];
  contents?: string[];
  period?: string;
  language?: string;
  recipients: number;
  suspended?: boolean;
  nextRun?: string;
  lastRun?: string;
  lastSent?: string;
  lastError?: string;
  ready?: string;
  reason?: string;
  message?: string;
}

// ReportsPage lists the brand's scheduled Reports (as the person may read them): what each
// mails, when, to how many, and how its last run went: last mailed, next run, and the
// error that kept a run from being mailed.
export function ReportsPage({ brand }: { brand: string }) {
  const { t, lang } = useApp();
  const [rows, setRows] = useState<ReportRow[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    call<ReportRow[]>("GET", `/api/brands/${encodeURIComponent(brand)}/reports`)
      .then((r) => {
        setRows(r);
        setError("");
      })
      .catch((e) => setError((e as Error).message));
  }, [brand]);
  const when = (s?: string) => (s ? new Date(s).toLocaleString(lang) : "–");
  return (
    <section>
      <BackLink to={{ page: "dashboard", brand }} label={`← ${t("back")}`} />
      <h1>
        {t("reports")} · {brand}
      </h1>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {rows && rows.length === 0 && <p>{t("noReports")}</p>}
      {rows && rows.length > 0 && (
        <table className="grid" data-testid="reports">
          <thead>
            <tr>
              <th>{t("report")}</th>
              <th>{t("reportSchedule")}</th>
              <th>{t("reportFormats")}</th>
              <th>{t("reportContents")}</th>
              <th className="num">{t("recipients")}</th>
              <th>{t("nextRun")}</th>
              <th>{t("lastSent")}</th>
              <th>{t("lastError")}</th>
              <th>{t("runs")}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.name} data-report={r.name}>
                <td>
                  {r.title || r.name}
                  {r.title && <span className="note"> · {r.name}</span>}
                  {r.suspended && <span className="badge"> {t("suspended")}</span>}
                  {r.ready === "False" && (
                    <div className="warn" title={r.message}>
                      {r.reason}
                    </div>
                  )}
                </td>
                <td>
                  <code>{r.cron}</code> {r.timeZone}
                  {r.period && <span className="note"> · {r.period}</span>}
                </td>
                <td>{r.formats.join(", ").toUpperCase()}</td>
                <td>{(r.contents ?? []).join(", ") || "–"}</td>
                <td className="num">{r.recipients}</td>
                <td data-testid="next-run">{when(r.nextRun)}</td>
                <td data-testid="last-sent">{when(r.lastSent)}</td>
                <td className={r.lastError ? "warn" : undefined} data-testid="last-error">
                  {r.lastError || "–"}
                </td>
                <td>
                  <Runs brand={brand} report={r.name} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

// Runs shows a Report's last runs on demand (the dispatcher's report runs, as the person):
// when each was scheduled, whether it was mailed, and its files as they were mailed.
function Runs({ brand, report }: { brand: string; report: string }) {
  const { t, lang } = useApp();
  const [runs, setRuns] = useState<ReportRun[] | null>(null);
  const [error, setError] = useState("");
  const base = `/api/brands/${encodeURIComponent(brand)}/admin/reports/${encodeURIComponent(report)}/runs`;
  if (!runs)
    return (
      <>
        <button
          type="button"
          data-testid="show-runs"
          onClick={() =>
            call<{ runs: ReportRun[] }>("GET", base)
              .then((b) => setRuns(b.runs))
              .catch((e) => setError((e as Error).message))
          }
        >
          {t("showRuns")}
        </button>
        {error && <span className="error"> {error}</span>}
      </>
    );
  if (runs.length === 0) return <span data-testid="no-runs">{t("noRuns")}</span>;
  return (
    <ul className="runs" data-testid="runs">
      {runs.slice(0, 5).map((run) => (
        <li key={run.id} data-run={run.id}>
          {new Date(run.scheduled).toLocaleString(lang)}: {run.sent ? t("mailed") : run.error ? <span className="warn">{run.error}</span> : t("pending")}
          {(run.files ?? []).map((f) => (
            <span key={f}>
              {" "}
              <a href={`${base}/${run.id}/${encodeURIComponent(f)}`} download={f} data-testid="run-file">
                {f}
              </a>
            </span>
          ))}
        </li>
      ))}
    </ul>
  );
}
