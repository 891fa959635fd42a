package gitops

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// A file of manifests is edited document by document and node by node: the documents the
// edit does not touch keep their bytes, and the one it touches is re-encoded from its own
// node tree (comments, key order and styles kept), so opening and saving without a change
// leaves the file byte-identical and a change shows as the lines it changed.

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*(?:#.*)?\n`)

// docSpan is one document's bytes in a file: [start, end).
type docSpan struct{ start, end int }

// splitDocs cuts a multi-document YAML file at its separator lines.
func splitDocs(b []byte) []docSpan {
	var out []docSpan
	start := 0
	for _, m := range docSeparator.FindAllIndex(b, -1) {
		out = append(out, docSpan{start, m[0]})
		start = m[1]
	}
	return append(out, docSpan{start, len(b)})
}

// manifest is what a document declares.
type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
}

// findDoc is the span of the document declaring kind/name (in namespace ns, or with no
// namespace), and whether there is one.
func findDoc(b []byte, kind, ns, name string) (docSpan, bool) {
	for _, d := range splitDocs(b) {
		var o manifest
		if yaml.Unmarshal(b[d.start:d.end], &o) != nil {
			continue
		}
		if o.Kind == kind && o.Metadata.Name == name && (o.Metadata.Namespace == "" || o.Metadata.Namespace == ns) {
			return d, true
		}
	}
	return docSpan{}, false
}

// parseDoc reads one document as a node tree (its mapping, under the document node).
func parseDoc(text string) (*yaml.Node, error) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(text), &n); err != nil {
		return nil, err
	}
	if n.Kind != yaml.DocumentNode || len(n.Content) != 1 || n.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("not one YAML mapping")
	}
	return &n, nil
}

// encodeDoc writes a document the way the manifests are written: two-space indent.
func encodeDoc(n *yaml.Node) (string, error) {
	var out bytes.Buffer
	e := yaml.NewEncoder(&out)
	e.SetIndent(2)
	if err := e.Encode(n); err != nil {
		return "", err
	}
	if err := e.Close(); err != nil {
		return "", err
	}
	return out.String(), nil
}

// step is one element of a node path: a mapping key, or a sequence index when key is "".
type step struct {
	key   string
	index int
}

type nodePath []step

func (p nodePath) String() string {
	var b strings.Builder
	for _, s := range p {
		if s.key == "" {
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
	}
	return b.String()
}

func (p nodePath) with(s step) nodePath { return append(append(nodePath{}, p...), s) }

// change is one difference from a base document to an edited one: at is set to val (nil:
// removed) where the base had was (nil: absent).
type change struct {
	at       nodePath
	was, val *yaml.Node
	key      *yaml.Node // the mapping key node when val is new
}

// value decodes a node for comparison: what it means, not how it is written.
func value(n *yaml.Node) any {
	if n == nil {
		return nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return fmt.Sprintf("\x00undecodable %p", n)
	}
	return v
}

func same(a, b *yaml.Node) bool { return reflect.DeepEqual(value(a), value(b)) }

// mapGet is the key and value nodes of key k in a mapping.
func mapGet(m *yaml.Node, k string) (key, val *yaml.Node, i int) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil, -1
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == k {
			return m.Content[i], m.Content[i+1], i
		}
	}
	return nil, nil, -1
}

// diff lists what changed from base to edit, as small as the structure allows: into
// mappings key by key, into sequences of unchanged length element by element, otherwise
// the whole node.
func diff(at nodePath, base, edit *yaml.Node) []change {
	if same(base, edit) {
		return nil
	}
	if base.Kind == yaml.MappingNode && edit.Kind == yaml.MappingNode {
		var out []change
		for i := 0; i+1 < len(edit.Content); i += 2 {
			k := edit.Content[i]
			if _, bv, _ := mapGet(base, k.Value); bv != nil {
				out = append(out, diff(at.with(step{key: k.Value}), bv, edit.Content[i+1])...)
			} else {
				out = append(out, change{at: at.with(step{key: k.Value}), val: edit.Content[i+1], key: k})
			}
		}
		for i := 0; i+1 < len(base.Content); i += 2 {
			if _, ev, _ := mapGet(edit, base.Content[i].Value); ev == nil {
				out = append(out, change{at: at.with(step{key: base.Content[i].Value}), was: base.Content[i+1]})
			}
		}
		return out
	}
	if base.Kind == yaml.SequenceNode && edit.Kind == yaml.SequenceNode && len(base.Content) == len(edit.Content) {
		var out []change
		for i := range edit.Content {
			out = append(out, diff(at.with(step{index: i}), base.Content[i], edit.Content[i])...)
		}
		return out
	}
	return []change{{at: at, was: base, val: edit}}
}

// lookup is the node at p under root, its parent, and whether the parent exists.
func lookup(root *yaml.Node, p nodePath) (n, parent *yaml.Node, ok bool) {
	n = root
	for i, s := range p {
		parent = n
		if s.key == "" {
			if n == nil || n.Kind != yaml.SequenceNode || s.index >= len(n.Content) {
				return nil, parent, i == len(p)-1 && n != nil && n.Kind == yaml.SequenceNode
			}
			n = n.Content[s.index]
			continue
		}
		_, v, _ := mapGet(n, s.key)
		if v == nil {
			return nil, parent, i == len(p)-1 && n != nil && n.Kind == yaml.MappingNode
		}
		n = v
	}
	return n, parent, true
}

// Conflict is an edit that another change to the same field got to first.
type Conflict struct{ Fields []string }

func (c *Conflict) Error() string {
	return "changed by someone else since you opened it: " + strings.Join(c.Fields, ", ")
}

// apply makes the changes on root (a document's mapping) where root still holds what the
// edit started from; a field changed there in another way is a conflict (nothing applied).
func apply(root *yaml.Node, changes []change) error {
	var conflicts []string
	for _, c := range changes {
		cur, _, ok := lookup(root, c.at)
		switch {
		case !ok:
			conflicts = append(conflicts, c.at.String())
		case same(cur, c.val) && (cur == nil) == (c.val == nil):
			// already so
		case !(same(cur, c.was) && (cur == nil) == (c.was == nil)):
			conflicts = append(conflicts, c.at.String())
		}
	}
	if len(conflicts) > 0 {
		return &Conflict{Fields: conflicts}
	}
	for _, c := range changes {
		cur, parent, _ := lookup(root, c.at)
		if same(cur, c.val) && (cur == nil) == (c.val == nil) {
			continue
		}
		last := c.at[len(c.at)-1]
		switch {
		case c.val == nil: // removed
			if _, _, i := mapGet(parent, last.key); i >= 0 {
				parent.Content = append(parent.Content[:i], parent.Content[i+2:]...)
			}
		case cur == nil: // added
			parent.Content = append(parent.Content, c.key, c.val)
		case last.key == "":
			keepComments(c.val, cur)
			parent.Content[last.index] = c.val
		default:
			_, _, i := mapGet(parent, last.key)
			keepComments(c.val, cur)
			parent.Content[i+1] = c.val
		}
	}
	return nil
}

// keepComments carries a replaced node's comments onto its replacement when that has none.
func keepComments(to, from *yaml.Node) {
	if to.HeadComment == "" {
		to.HeadComment = from.HeadComment
	}
	if to.LineComment == "" {
		to.LineComment = from.LineComment
	}
	if to.FootComment == "" {
		to.FootComment = from.FootComment
	}
}

// Merge applies what changed from base to edit (three documents as text) onto theirs,
// returning theirs' text unchanged byte for byte when nothing did. A field changed both
// in edit and, differently, in theirs is a *Conflict.
func Merge(base, edit, theirs string) (string, error) {
	b, err := parseDoc(base)
	if err != nil {
		return "", fmt.Errorf("the version you opened: %w", err)
	}
	e, err := parseDoc(edit)
	if err != nil {
		return "", fmt.Errorf("yaml: %w", err)
	}
	changes := diff(nil, b.Content[0], e.Content[0])
	if len(changes) == 0 {
		return theirs, nil
	}
	t, err := parseDoc(theirs)
	if err != nil {
		return "", fmt.Errorf("the current version: %w", err)
	}
	if err := apply(t.Content[0], changes); err != nil {
		return "", err
	}
	return encodeDoc(t)
}

// Replace merges an edit of kind/name (edit, from base) into the file's document declaring
// it, leaving every other byte of the file as it was. A file without that document gets
// it appended.
func Replace(file []byte, kind, ns, name, base, edit string) ([]byte, error) {
	d, ok := findDoc(file, kind, ns, name)
	if !ok {
		out := append([]byte{}, file...)
		if len(out) > 0 {
			if out[len(out)-1] != '\n' {
				out = append(out, '\n')
			}
			out = append(out, "---\n"...)
		}
		return append(out, edit...), nil
	}
	merged, err := Merge(base, edit, string(file[d.start:d.end]))
	if err != nil {
		return nil, err
	}
	out := append([]byte{}, file[:d.start]...)
	out = append(out, merged...)
	return append(out, file[d.end:]...), nil
}

// Set is doc with the field at keys (mappings, created when missing) set to v.
func Set(doc string, v any, keys ...string) (string, error) {
	n, err := parseDoc(doc)
	if err != nil {
		return "", err
	}
	var val yaml.Node
	if err := val.Encode(v); err != nil {
		return "", err
	}
	m := n.Content[0]
	for i, k := range keys {
		kn, vn, j := mapGet(m, k)
		switch {
		case i == len(keys)-1 && kn != nil:
			keepComments(&val, vn)
			if vn.Kind == yaml.ScalarNode && val.Kind == yaml.ScalarNode && vn.Style != yaml.LiteralStyle && vn.Style != yaml.FoldedStyle {
				val.Style = vn.Style // 'quoted' stays quoted
			}
			m.Content[j+1] = &val
		case i == len(keys)-1:
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, &val)
		case vn == nil:
			vn = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, vn)
			m = vn
		case vn.Kind != yaml.MappingNode:
			return "", fmt.Errorf("%s: not a mapping", strings.Join(keys[:i+1], "."))
		default:
			m = vn
		}
	}
	return encodeDoc(n)
}
