import { createContext, useCallback, useContext, useEffect, useState } from "react";
import { call, setCSRF, type Me } from "./api";
import { langs, pickLang, translate, type Key, type Lang } from "./i18n";
import { format, parse, type Route } from "./route";
import { NewCampaign } from "./NewCampaign";
import { PlayerPage } from "./PlayerPage";
import { SegmentsPage } from "./Segments";
import { TournamentsPage } from "./Tournaments";
import { CouponsPage } from "./Coupons";
import { ReportsPage } from "./Reports";
import { SignIn } from "./SignIn";
import { Dashboard } from "./Dashboard";
import { CampaignPage } from "./CampaignPage";

interface Ctx {
  lang: Lang;
  t: (k: Key) => string;
  go: (r: Route) => void;
  me: Me | null;
}

export const AppContext = createContext<Ctx>({ lang: "en", t: (k) => k, go: () => {}, me: null });
export const useApp = () => useContext(AppContext);

export function App() {
  const [lang, setLang] = useState<Lang>(() => pickLang(localStorage.getItem("lang"), navigator.languages));
  const [route, setRoute] = useState<Route>(() => parse(location.pathname, location.search));
  const [me, setMe] = useState<Me | null>(null);
  const [checked, setChecked] = useState(false);

  useEffect(() => {
    document.documentElement.lang = lang;
    localStorage.setItem("lang", lang);
  }, [lang]);
  useEffect(() => {
    const onPop = () => setRoute(parse(location.pathname, location.search));
    addEventListener("popstate", onPop);
    return () => removeEventListener("popstate", onPop);
  }, []);
  useEffect(() => {
    call<Me>("GET", "/api/me")
      .then((m) => {
        setCSRF(m.csrf);
        setMe(m);
      })
      .catch(() => setMe(null))
      .finally(() => setChecked(true));
  }, []);

  const go = useCallback((r: Route) => {
    history.pushState(null, "", format(r));
    setRoute(r);
  }, []);
  const t = useCallback((k: Key) => translate(lang, k), [lang]);

  const signedIn = (m: Me, brand: string) => {
    setCSRF(m.csrf);
    setMe(m);
    go(route.page === "signin" ? { page: "dashboard", brand } : route);
  };
  const signOut = async () => {
    await call("DELETE", "/api/session").catch(() => undefined);
    setMe(null);
    go({ page: "signin" });
  };

  let page = null;
  if (!checked) page = null;
  else if (!me || route.page === "signin") page = <SignIn onSignedIn={signedIn} />;
  else if (route.page === "dashboard") page = <Dashboard brand={route.brand} />;
  else if (route.page === "new") page = <NewCampaign brand={route.brand} />;
  else if (route.page === "player") page = <PlayerPage brand={route.brand} player={route.player} />;
  else if (route.page === "segments") page = <SegmentsPage brand={route.brand} segment={route.segment} />;
  else if (route.page === "tournaments") page = <TournamentsPage brand={route.brand} />;
  else if (route.page === "coupons") page = <CouponsPage brand={route.brand} />;
  else if (route.page === "reports") page = <ReportsPage brand={route.brand} />;
  else page = <CampaignPage brand={route.brand} name={route.campaign} from={route.from} to={route.to} by={route.by} />;

  return (
    <AppContext.Provider value={{ lang, t, go, me }}>
      <header className="top">
        <strong>{t("title")}</strong>
        <span className="spacer" />
        <label>
          {t("language")}{" "}
          <select aria-label={t("language")} value={lang} onChange={(e) => setLang(e.target.value as Lang)}>
            {langs.map((l) => (
              <option key={l} value={l}>
                {l}
              </option>
            ))}
          </select>
        </label>
        {me && (
          <>
            <span className="who" data-testid="who">
              {t("signedInAs")} {me.user}
            </span>
            <button onClick={signOut}>{t("signOut")}</button>
          </>
        )}
      </header>
      <main>{page}</main>
    </AppContext.Provider>
  );
}
