import { useState } from "react";
import { stringify } from "yaml";
import { useApp } from "./App";
import { Workbench } from "./CampaignPage";
import { useCampaignEdit } from "./Editor";

const dns = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

// template is where a new campaign starts: a trigger, one send and its content, which the
// marketer then shapes in the builder.
export function template(brand: string, name: string): string {
  return stringify({
    apiVersion: "crm.croupier.dev/v1alpha1",
    kind: "Campaign",
    metadata: { name, namespace: brand },
    spec: {
      description: "",
      category: "marketing",
      trigger: { event: { type: "player.registered" } },
      steps: [{ name: "welcome", send: { content: "welcome" } }],
      contents: [
        {
          name: "welcome",
          messages: [
            { channel: "push", locale: "az", subject: "Xoş gəlmisiniz!", body: "Salam, {{ .Player.FirstName }}!" },
            { channel: "push", locale: "ru", subject: "Добро пожаловать!", body: "Здравствуйте, {{ .Player.FirstName }}!" },
          ],
        },
      ],
    },
  });
}

// NewCampaign names a campaign, then builds it from the template; the save creates it (or
// commits it, where the brand's truth is Git).
export function NewCampaign({ brand }: { brand: string }) {
  const { t } = useApp();
  const [name, setName] = useState("");
  const [chosen, setChosen] = useState("");
  if (!chosen)
    return (
      <section>
        <h1>{t("newCampaign")}</h1>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (dns.test(name)) setChosen(name);
          }}
        >
          <label className="field">
            <span>{t("name")}</span>
            <input data-testid="new-name" value={name} onChange={(e) => setName(e.target.value.toLowerCase())} maxLength={63} />
          </label>
          <button type="submit" disabled={!dns.test(name)} data-testid="new-start">
            {t("create")}
          </button>
        </form>
      </section>
    );
  return <Building brand={brand} name={chosen} />;
}

function Building({ brand, name }: { brand: string; name: string }) {
  const { t, go } = useApp();
  const state = useCampaignEdit(brand, name, template(brand, name));
  return (
    <section>
      <h1>
        {t("newCampaign")}: {name}
      </h1>
      {/* Committed to Git, the campaign exists once Argo CD or Flux applies it: the page
          stays on the commit. Applied, it opens. */}
      <Workbench brand={brand} name={name} saved={false} state={state} mayEdit onSaved={(r) => !r.git && go({ page: "campaign", brand, campaign: name })} />
    </section>
  );
}
