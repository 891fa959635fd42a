// The email block editor's model: a message body is a list of blocks (heading, text,
// button, image, divider) written as email-safe HTML (one centred 600px table, inline
// styles), with the blocks themselves in a comment at the top so the editor can open the
// body again. The dispatcher renders the HTML with html/template, which drops comments: a
// player never gets the marker. Template actions ({{ ... }}) are kept as written; the text
// around them is HTML-escaped.

export type Block =
  | { kind: "heading"; text: string }
  | { kind: "text"; text: string }
  | { kind: "button"; text: string; url: string }
  | { kind: "image"; src: string; alt: string }
  | { kind: "divider" };

export const blockKinds = ["heading", "text", "button", "image", "divider"] as const;

const marker = "croupier-blocks v1 ";

// escapeText escapes HTML outside template actions, so {{ .Player.FirstName }} stays an
// action and "<b>" stays text.
export function escapeText(s: string): string {
  let out = "";
  let i = 0;
  while (i < s.length) {
    const open = s.indexOf("{{", i);
    if (open < 0) {
      out += esc(s.slice(i));
      break;
    }
    const close = s.indexOf("}}", open + 2);
    if (close < 0) {
      out += esc(s.slice(i));
      break;
    }
    out += esc(s.slice(i, open)) + s.slice(open, close + 2);
    i = close + 2;
  }
  return out;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

// safeURL keeps http(s) and mailto links and template actions; anything else (javascript:,
// data:) becomes "#".
export function safeURL(u: string): string {
  const t = u.trim();
  if (/^(https?:\/\/|mailto:)/i.test(t) || /^\{\{[^}]*\}\}$/.test(t)) return t;
  return "#";
}

function b64(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

function unb64(s: string): string {
  const bin = atob(s);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

const font = "font-family:Arial,Helvetica,sans-serif;color:#1f2933;";

function blockHTML(b: Block): string {
  switch (b.kind) {
    case "heading":
      return `<tr><td style="padding:16px 24px 8px;${font}font-size:22px;font-weight:bold;">${escapeText(b.text)}</td></tr>`;
    case "text":
      return `<tr><td style="padding:8px 24px;${font}font-size:15px;line-height:1.5;">${escapeText(b.text).replace(/\n/g, "<br>")}</td></tr>`;
    case "button":
      return `<tr><td style="padding:16px 24px;" align="center"><a href="${escapeText(safeURL(b.url))}" style="display:inline-block;padding:12px 24px;background:#c8102e;color:#ffffff;${"font-family:Arial,Helvetica,sans-serif;"}font-size:16px;font-weight:bold;text-decoration:none;border-radius:4px;">${escapeText(b.text)}</a></td></tr>`;
    case "image":
      return `<tr><td style="padding:8px 24px;"><img src="${escapeText(safeURL(b.src))}" alt="${escapeText(b.alt)}" width="552" style="display:block;width:100%;max-width:552px;height:auto;border:0;"></td></tr>`;
    case "divider":
      return `<tr><td style="padding:8px 24px;"><hr style="border:0;border-top:1px solid #d9dee5;margin:0;"></td></tr>`;
  }
}

// toHTML writes the blocks as the email's HTML body.
export function toHTML(blocks: Block[]): string {
  return (
    `<!-- ${marker}${b64(JSON.stringify(blocks))} -->\n` +
    `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f6f8;"><tr><td align="center">\n` +
    `<table role="presentation" width="600" cellpadding="0" cellspacing="0" style="max-width:600px;width:100%;background:#ffffff;">\n` +
    blocks.map(blockHTML).join("\n") +
    `\n</table>\n</td></tr></table>\n`
  );
}

// fromHTML reads the blocks back from a body toHTML wrote; null for any other body (edited
// by hand, or not from the block editor), which the editor then leaves as HTML.
export function fromHTML(html: string): Block[] | null {
  const m = /^<!-- croupier-blocks v1 ([A-Za-z0-9+/=]+) -->\n/.exec(html);
  if (!m) return null;
  try {
    const blocks = JSON.parse(unb64(m[1])) as Block[];
    if (!Array.isArray(blocks) || blocks.some((b) => !blockKinds.includes(b.kind))) return null;
    // A body changed by hand after the editor wrote it is not the editor's any more.
    return toHTML(blocks) === html ? blocks : null;
  } catch {
    return null;
  }
}

export function newBlock(kind: (typeof blockKinds)[number]): Block {
  switch (kind) {
    case "heading":
      return { kind, text: "Salam, {{ .Player.FirstName }}!" };
    case "text":
      return { kind, text: "" };
    case "button":
      return { kind, text: "Play now", url: "https://" };
    case "image":
      return { kind, src: "https://", alt: "" };
    case "divider":
      return { kind };
  }
}
