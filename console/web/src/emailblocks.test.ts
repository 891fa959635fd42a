import { describe, expect, it } from "vitest";
import { escapeText, fromHTML, safeURL, toHTML, type Block } from "./emailblocks";

describe("email blocks", () => {
  const blocks: Block[] = [
    { kind: "heading", text: "Salam, {{ .Player.FirstName }}! Xoş gəldiniz" },
    { kind: "text", text: "Bonus <b>50%</b> & free spins\nsecond line" },
    { kind: "button", text: "Oyna", url: "https://baku-casino.example/promo?a=1&b=2" },
    { kind: "image", src: "javascript:alert(1)", alt: 'a "quoted" alt' },
    { kind: "divider" },
  ];
  it("writes email-safe HTML and reads the blocks back", () => {
    const html = toHTML(blocks);
    expect(html).toContain("Salam, {{ .Player.FirstName }}! Xoş gəldiniz");
    expect(html).toContain("Bonus &lt;b&gt;50%&lt;/b&gt; &amp; free spins<br>second line");
    expect(html).toContain('href="https://baku-casino.example/promo?a=1&amp;b=2"');
    expect(html).toContain('src="#"'); // javascript: is no image
    expect(html).toContain('alt="a &quot;quoted&quot; alt"');
    expect(html).not.toContain("<b>");
    expect(fromHTML(html)).toEqual(blocks);
  });
  it("leaves a body it did not write, or one edited by hand, to the HTML editor", () => {
    expect(fromHTML("<p>hello</p>")).toBeNull();
    expect(fromHTML(toHTML(blocks).replace("Oyna", "Play"))).toBeNull();
    expect(fromHTML("<!-- croupier-blocks v1 !!! -->\n")).toBeNull();
  });
  it("keeps template actions and escapes around them", () => {
    expect(escapeText('<i>{{ .Player.Attr "tier" }}</i>')).toBe('&lt;i&gt;{{ .Player.Attr "tier" }}&lt;/i&gt;');
    expect(escapeText("{{ unclosed <x>")).toBe("{{ unclosed &lt;x&gt;");
    expect(safeURL("{{ .Event.Data.link }}")).toBe("{{ .Event.Data.link }}");
    expect(safeURL(" data:text/html,x")).toBe("#");
    expect(safeURL("mailto:vip@baku-casino.example")).toBe("mailto:vip@baku-casino.example");
  });
});
