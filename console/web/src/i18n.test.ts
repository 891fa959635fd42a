import { describe, expect, it } from "vitest";
import { dictionaries, langs, pickLang } from "./i18n";

describe("i18n", () => {
  it("has every key in every language, none empty", () => {
    const keys = Object.keys(dictionaries.en).sort();
    for (const l of langs) {
      expect(Object.keys(dictionaries[l]).sort()).toEqual(keys);
      for (const k of keys) expect(dictionaries[l][k as keyof typeof dictionaries.en].trim()).not.toBe("");
    }
  });
  it("picks the stored language, then the browser's, then English", () => {
    expect(pickLang("ru", ["az-AZ"])).toBe("ru");
    expect(pickLang(null, ["de-DE", "az-AZ"])).toBe("az");
    expect(pickLang("xx", ["de"])).toBe("en");
  });
});
