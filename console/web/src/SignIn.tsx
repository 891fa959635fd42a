import { useEffect, useState, type FormEvent } from "react";
import { call, type Me } from "./api";
import { useApp } from "./App";

export function SignIn({ onSignedIn }: { onSignedIn: (m: Me, brand: string) => void }) {
  const { t } = useApp();
  const [token, setToken] = useState("");
  const [brands, setBrands] = useState<string[]>([]);
  const [brand, setBrand] = useState("");
  const [error, setError] = useState("");
  useEffect(() => {
    call<{ brands: string[] }>("GET", "/api/config").then((c) => {
      setBrands(c.brands ?? []);
      setBrand((b) => b || c.brands?.[0] || "");
    });
  }, []);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError("");
    try {
      const m = await call<Me>("POST", "/api/session", { token });
      setToken("");
      onSignedIn(m, brand);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <form className="signin" onSubmit={submit}>
      <h1>{t("signInTitle")}</h1>
      <p>{t("signInHelp")}</p>
      <label>
        {t("token")}
        <textarea name="token" rows={4} value={token} onChange={(e) => setToken(e.target.value)} autoComplete="off" spellCheck={false} />
      </label>
      <label>
        {t("brand")}
        <input name="brand" list="brands" value={brand} onChange={(e) => setBrand(e.target.value.trim())} />
        <datalist id="brands">
          {brands.map((b) => (
            <option key={b} value={b} />
          ))}
        </datalist>
      </label>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <button type="submit" disabled={!token || !brand}>
        {t("signIn")}
      </button>
    </form>
  );
}
