import { useApp } from "./App";
import { blockKinds, newBlock, toHTML, type Block } from "./emailblocks";

// BlockEditor edits an email as blocks, in place: headings and paragraphs are typed where
// they show (committed when the field is left, so the caret never jumps), a button's label
// and link, an image's address and text; blocks move up and down and go. Every change
// writes the body as HTML (emailblocks.toHTML), which the studio previews through the
// dispatcher's renderer.
export function BlockEditor({ blocks, onChange }: { blocks: Block[]; onChange: (html: string) => void }) {
  const { t } = useApp();
  const put = (next: Block[]) => onChange(toHTML(next));
  const edit = (i: number, b: Block) => put(blocks.map((x, j) => (j === i ? b : x)));
  const move = (i: number, d: number) => {
    const next = [...blocks];
    const [b] = next.splice(i, 1);
    next.splice(Math.max(0, Math.min(next.length, i + d)), 0, b);
    put(next);
  };
  return (
    <div className="blocks" data-testid="block-editor">
      {blocks.map((b, i) => (
        <div key={`${i}-${b.kind}`} className={`block ${b.kind}`} data-block={i} data-kind={b.kind}>
          <div className="block-tools">
            <span className="note">{t(`block_${b.kind}` as const)}</span>
            <button type="button" onClick={() => move(i, -1)} disabled={i === 0} aria-label={t("moveUp")}>
              ↑
            </button>
            <button type="button" onClick={() => move(i, 1)} disabled={i === blocks.length - 1} aria-label={t("moveDown")}>
              ↓
            </button>
            <button type="button" onClick={() => put(blocks.filter((_, j) => j !== i))} aria-label={t("deleteBlock")} data-delete-block={i}>
              ✕
            </button>
          </div>
          {(b.kind === "heading" || b.kind === "text") && (
            <div
              className={b.kind === "heading" ? "block-heading" : "block-text"}
              contentEditable
              suppressContentEditableWarning
              role="textbox"
              data-edit={i}
              onBlur={(e) => {
                const text = e.currentTarget.innerText.replace(/\n$/, "");
                if (text !== b.text) edit(i, { ...b, text });
              }}
            >
              {b.text}
            </div>
          )}
          {b.kind === "button" && (
            <div className="block-button">
              <span
                className="email-button"
                contentEditable
                suppressContentEditableWarning
                role="textbox"
                data-edit={i}
                onBlur={(e) => {
                  const text = e.currentTarget.innerText.trim();
                  if (text !== b.text) edit(i, { ...b, text });
                }}
              >
                {b.text}
              </span>
              <input value={b.url} onChange={(e) => edit(i, { ...b, url: e.target.value })} placeholder="https://" data-url={i} />
            </div>
          )}
          {b.kind === "image" && (
            <div className="block-image">
              <input value={b.src} onChange={(e) => edit(i, { ...b, src: e.target.value })} placeholder="https://…/banner.png" data-src={i} />
              <input value={b.alt} onChange={(e) => edit(i, { ...b, alt: e.target.value })} placeholder={t("imageText")} />
            </div>
          )}
          {b.kind === "divider" && <hr />}
        </div>
      ))}
      <div className="block-add">
        {blockKinds.map((k) => (
          <button key={k} type="button" onClick={() => put([...blocks, newBlock(k)])} data-add-block={k}>
            + {t(`block_${k}` as const)}
          </button>
        ))}
      </div>
    </div>
  );
}
