import { useCallback, useEffect, useState } from "react";
import { call, can, ApiError } from "./api";
import { useApp } from "./App";
import { BackLink } from "./BackLink";
import { useAccess } from "./Dashboard";
import { count } from "./format";

interface Pool {
  pool: string;
  kind: "imported" | "generated" | "shared";
  campaigns: string[];
  value?: string;
  currency?: string;
  imported?: number;
  drawn?: number;
  left?: number;
  code?: string;
  uses?: number;
  maxUses?: number;
  redeemed: number;
}

// CouponsPage lists the brand's coupon pools with their stock (the dispatcher's
// coupons/pools, as the person) and, for who may import, adds partner codes to a pool.
export function CouponsPage({ brand }: { brand: string }) {
  const { t, lang } = useApp();
  const access = useAccess(brand);
  const mayImport = can(access, "admin.crm.croupier.dev", "coupons/import", "create");
  const [pools, setPools] = useState<Pool[] | null>(null);
  const [error, setError] = useState("");
  const load = useCallback(() => {
    call<{ pools: Pool[] }>("GET", `/api/brands/${encodeURIComponent(brand)}/admin/coupons/pools`)
      .then((r) => {
        setPools(r.pools);
        setError("");
      })
      .catch((e) => setError((e as Error).message));
  }, [brand]);
  useEffect(load, [load]);
  return (
    <section>
      <BackLink to={{ page: "dashboard", brand }} label={`← ${t("back")}`} />
      <h1>
        {t("coupons")} · {brand}
      </h1>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {pools && pools.length === 0 && <p>{t("noPools")}</p>}
      {pools && pools.length > 0 && (
        <table className="grid" data-testid="pools">
          <thead>
            <tr>
              <th>{t("pool")}</th>
              <th>{t("poolKind")}</th>
              <th>{t("campaigns")}</th>
              <th className="num">{t("value")}</th>
              <th className="num">{t("poolImported")}</th>
              <th className="num">{t("poolDrawn")}</th>
              <th className="num">{t("poolLeft")}</th>
              <th className="num">{t("redeemed")}</th>
            </tr>
          </thead>
          <tbody>
            {pools.map((p) => (
              <tr key={p.pool} data-pool={p.pool}>
                <td>
                  {p.pool}
                  {p.code && <span className="note"> · {p.code}</span>}
                </td>
                <td>{t(`pool_${p.kind}` as const)}</td>
                <td>{p.campaigns.join(", ") || "–"}</td>
                <td className="num">{p.value ? `${p.value} ${p.currency ?? ""}` : "–"}</td>
                <td className="num">{p.kind === "imported" ? count(lang, p.imported ?? 0) : "–"}</td>
                <td className="num">{p.kind === "imported" ? count(lang, p.drawn ?? 0) : p.kind === "shared" ? `${count(lang, p.uses ?? 0)}${p.maxUses ? ` / ${count(lang, p.maxUses)}` : ""}` : "–"}</td>
                <td className={p.kind === "imported" && (p.left ?? 0) === 0 ? "num warn" : "num"} data-testid="left">
                  {p.kind === "imported" ? count(lang, p.left ?? 0) : "–"}
                </td>
                <td className="num">{count(lang, p.redeemed)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {mayImport && <ImportForm brand={brand} pools={pools ?? []} onDone={load} />}
    </section>
  );
}

// ImportForm adds partner-issued codes (one per line) to an imported pool.
function ImportForm({ brand, pools, onDone }: { brand: string; pools: Pool[]; onDone: () => void }) {
  const { t } = useApp();
  const [pool, setPool] = useState("");
  const [codes, setCodes] = useState("");
  const [until, setUntil] = useState("");
  const [result, setResult] = useState("");
  const [error, setError] = useState("");
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setError("");
    setResult("");
    const list = codes
      .split(/[\s,;]+/)
      .map((c) => c.trim())
      .filter(Boolean);
    try {
      const r = await call<{ added: number; duplicates: string[] }>("POST", `/api/brands/${encodeURIComponent(brand)}/admin/coupons/import`, {
        pool,
        codes: list,
        ...(until ? { validUntil: new Date(until + "T23:59:59Z").toISOString() } : {}),
      });
      setResult(t("importedCodes").replace("{n}", String(r.added)) + (r.duplicates.length ? ` ${t("duplicates")}: ${r.duplicates.join(", ")}` : ""));
      setCodes("");
      onDone();
    } catch (err) {
      const body = err instanceof ApiError ? (err.body as { field?: string } | undefined) : undefined;
      setError((err as Error).message + (body?.field ? ` (${body.field})` : ""));
    }
  };
  return (
    <form className="import" onSubmit={submit} data-testid="import-codes">
      <h2>{t("importCodes")}</h2>
      <label>
        {t("pool")}{" "}
        <input list="pool-names" value={pool} onChange={(e) => setPool(e.target.value)} required pattern="[a-z0-9-]{1,63}" data-testid="import-pool" />
        <datalist id="pool-names">
          {pools
            .filter((p) => p.kind === "imported")
            .map((p) => (
              <option key={p.pool} value={p.pool} />
            ))}
        </datalist>
      </label>
      <label>
        {t("validUntil")} <input type="date" value={until} onChange={(e) => setUntil(e.target.value)} />
      </label>
      <label className="block">
        {t("codesOnePerLine")}
        <textarea rows={6} value={codes} onChange={(e) => setCodes(e.target.value)} required data-testid="import-list" />
      </label>
      <button type="submit" data-testid="import-submit">
        {t("importCodes")}
      </button>
      {result && <p data-testid="import-result">{result}</p>}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
