import { useMemo, useRef, useState } from "react";
import { parse } from "yaml";
import { Breakdown, dims, type Dim } from "./Breakdown";
import { Builder } from "./Builder";
import { Effect } from "./Effect";
import { Studio } from "./Studio";
import { stepOfField } from "./flowedit";
import type { Spec } from "./graph";
import { can } from "./api";
import { useApp } from "./App";
import { BackLink } from "./BackLink";
import { PauseButton, ReasonsTable, useAccess } from "./Dashboard";
import { Editor, useCampaignEdit, type CampaignEdit } from "./Editor";
import { Period } from "./Period";
import { count, money, roi } from "./format";
import { useLive } from "./live";

export function CampaignPage({ brand, name, from, to, by }: { brand: string; name: string; from?: string; to?: string; by?: string }) {
  const { t, lang, go } = useApp();
  const { rows } = useLive(brand);
  const access = useAccess(brand);
  const [error, setError] = useState("");
  const state = useCampaignEdit(brand, name);
  const mayEdit = can(access, "crm.croupier.dev", "campaigns", "patch");
  const row = rows?.find((r) => r.name === name);
  const back = (
    <BackLink to={{ page: "dashboard", brand }} label={`← ${t("back")}`} />
  );
  if (rows && !row)
    return (
      <section>
        {back}
        <h1>{t("notFound")}</h1>
      </section>
    );
  if (!row) return <section>{back}</section>;
  const c = row.status.counters ?? {};
  const figures: [string, string][] = [
    [t("launched"), count(lang, c.launched)],
    [t("targeted"), count(lang, c.targeted)],
    [t("sent"), count(lang, c.sent)],
    [t("delivered"), count(lang, c.delivered)],
    [t("failed"), count(lang, c.failed)],
    [t("converted"), count(lang, c.converted)],
    [t("rewardsGranted"), count(lang, c.rewardsGranted)],
    [t("bonusesActivated"), count(lang, c.bonusesActivated)],
    [t("rewardsCancelled"), count(lang, c.rewardsCancelled)],
    [t("leads"), count(lang, c.leads)],
    [t("spend"), money(lang, row.status.spend?.spent)],
    [t("revenue"), row.status.report?.revenue ? `${row.status.report.revenue} ${row.status.report.currency ?? ""}` : "–"],
    [t("cpa"), row.status.report?.cpa ? `${row.status.report.cpa} ${row.status.report.currency ?? ""}` : "–"],
    [t("cpl"), row.status.report?.cpl ? `${row.status.report.cpl} ${row.status.report.currency ?? ""}` : "–"],
    [t("roi"), roi(row.status.report?.roi)],
  ];
  return (
    <section>
      {back}
      <h1>
        {row.name} {row.paused && <span className="badge">{t("paused")}</span>}
      </h1>
      {can(access, "crm.croupier.dev", "campaigns", "patch") && <PauseButton brand={brand} row={row} onError={setError} />}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <dl className="figures" data-testid="figures">
        {figures.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
      <h2 id="by-channel">{t("byChannel")}</h2>
      {(row.status.channels ?? []).length === 0 ? (
        <p>{t("noChannels")}</p>
      ) : (
        <table className="grid" data-testid="channels">
          <thead>
            <tr>
              <th>{t("channel")}</th>
              <th className="num">{t("sent")}</th>
              <th className="num">{t("delivered")}</th>
              <th className="num">{t("opened")}</th>
              <th className="num">{t("clicked")}</th>
              <th className="num">{t("bounced")}</th>
              <th className="num">{t("complaints")}</th>
              <th className="num">{t("unsubscribes")}</th>
              <th className="num">{t("failed")}</th>
              <th className="num">{t("undelivered")}</th>
              <th className="num">{t("converted")}</th>
              <th className="num">{t("messageCost")}</th>
              <th className="num">{t("revenue")}</th>
              <th className="num">{t("cpa")}</th>
              <th className="num">{t("leads")}</th>
              <th className="num">{t("cpl")}</th>
              <th className="num">{t("roi")}</th>
            </tr>
          </thead>
          <tbody>
            {(row.status.channels ?? []).map((c) => (
              <tr key={c.channel} data-channel={c.channel}>
                <td>{c.channel}</td>
                <td className="num">{count(lang, c.sent)}</td>
                <td className="num">{count(lang, c.delivered)}</td>
                <td className="num">{count(lang, c.opened)}</td>
                <td className="num">{count(lang, c.clicked)}</td>
                <td className="num">{count(lang, c.bounced)}</td>
                <td className="num">{count(lang, c.complaints)}</td>
                <td className="num">{count(lang, c.unsubscribes)}</td>
                <td className="num">{count(lang, c.failed)}</td>
                <td className="num">{count(lang, c.undelivered)}</td>
                <td className="num">{count(lang, c.converted)}</td>
                <td className="num">{c.messageCost ?? "–"}</td>
                <td className="num">{c.revenue ?? "–"}</td>
                <td className="num">{c.cpa ?? "–"}</td>
                <td className="num">{count(lang, c.leads)}</td>
                <td className="num">{c.cpl ?? "–"}</td>
                <td className="num">{roi(c.roi)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2 id="by-day">{t("byDay")}</h2>
      <Period brand={brand} name={name} from={from} to={to} onPeriod={(f, tt) => go({ page: "campaign", brand, campaign: name, by: "day", from: f || undefined, to: tt || undefined })} />
      <h2 id="by-segment">{t("bySegment")}</h2>
      <Breakdown brand={brand} name={name} dim={(dims as readonly string[]).includes(by ?? "") ? (by as Dim) : undefined} onDim={(d) => go({ page: "campaign", brand, campaign: name, by: d })} />
      <h2 id="effect">{t("effect")}</h2>
      <Effect brand={brand} name={name} />
      <h2>{t("whyNotSent")}</h2>
      <ReasonsTable rows={[row]} />
      {row.status.variants && row.status.variants.length > 0 && (
        <>
          <h2>{t("experiment")}</h2>
          <table className="grid" data-testid="variants">
            <thead>
              <tr>
                <th>{t("variant")}</th>
                <th className="num">{t("players")}</th>
                <th className="num">{t("converted")}</th>
                <th className="num">{t("conversionRate")}</th>
                <th className="num">{t("pValue")}</th>
                <th>{t("significant")}</th>
              </tr>
            </thead>
            <tbody>
              {row.status.variants.map((v) => (
                <tr key={v.name}>
                  <td>{v.name}</td>
                  <td className="num">{count(lang, v.players)}</td>
                  <td className="num">{count(lang, v.converted)}</td>
                  <td className="num">{v.conversionRate ?? "–"}</td>
                  <td className="num">{v.pValue ?? "–"}</td>
                  <td>{v.significant ? t("yes") : t("no")}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      <Workbench brand={brand} name={name} saved state={state} mayEdit={mayEdit} />
      <h2>{t("conditions")}</h2>
      <table className="grid">
        <tbody>
          {(row.status.conditions ?? []).map((cd) => (
            <tr key={cd.type}>
              <td>{cd.type}</td>
              <td>{cd.status}</td>
              <td>{cd.reason}</td>
              <td>{cd.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

// useSpec is the spec of the YAML being edited; while the YAML does not parse, the last
// spec that did (and the parser's message).
export function useSpec(yaml: string | undefined): { spec: Spec | null; error: string } {
  const last = useRef<Spec | null>(null);
  return useMemo(() => {
    if (yaml === undefined) return { spec: null, error: "" };
    try {
      const o = parse(yaml) as { spec?: Spec } | null;
      last.current = o?.spec ?? {};
      return { spec: last.current, error: "" };
    } catch (e) {
      return { spec: last.current, error: (e as Error).message };
    }
  }, [yaml]);
}

// Workbench is the builder (graph, palette, forms) over the YAML tab: two views of one text.
export function Workbench({ brand, name, saved, state, mayEdit, onSaved }: { brand: string; name: string; saved: boolean; state: CampaignEdit; mayEdit: boolean; onSaved?: Parameters<typeof Editor>[0]["onSaved"] }) {
  const { t } = useApp();
  const { spec, error } = useSpec(state.edit?.yaml);
  // Causes about no step (the spec's own rules, its other fields) are listed here; the
  // rest are drawn on their step.
  const loose = state.causes.filter((c) => !stepOfField(c.field, spec?.steps ?? []));
  return (
    <>
      <h2 id="flow">{mayEdit ? t("builder") : t("steps")}</h2>
      {spec && state.edit && <Builder brand={brand} name={name} saved={saved} spec={spec} yaml={state.edit.yaml} setYAML={mayEdit ? state.setYAML : undefined} causes={state.causes} editable={mayEdit} />}
      {error && <p className="error">{error}</p>}
      {loose.length > 0 && (
        <ul className="error" data-testid="causes">
          {loose.map((c, i) => (
            <li key={i}>
              {c.field && <code>{c.field}</code>} {c.message}
            </li>
          ))}
        </ul>
      )}
      <h2 id="studio">{t("studio")}</h2>
      {spec && state.edit && (
        <Studio brand={brand} campaign={name} contents={(spec as { contents?: Parameters<typeof Studio>[0]["contents"] }).contents ?? []} yaml={state.edit.yaml} setYAML={mayEdit ? state.setYAML : undefined} />
      )}
      <h2 id="edit">{t("yamlTab")}</h2>
      <Editor state={state} maySave={mayEdit} onSaved={onSaved} />
    </>
  );
}
