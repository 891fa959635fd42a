// Command benchdoc rewrites the generated section of docs/benchmarks.md from the output of
// `make bench` (.croupier/bench.txt): the machine, the date, the raw JetStream ceiling of
// the same run and every benchmark's figures, with throughputs as ratios to the ceiling.
// The hand-written sections around it (what each benchmark measures, earlier runs) stay.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

const (
	begin = "<!-- written by make bench / make reliability (hack/benchdoc) from here; edits below are lost -->"
	end   = "<!-- written up to here -->"
)

var (
	refLine   = regexp.MustCompile(`^(jetstream .*|pipeline .*|kv get\+compare-and-set, \d+ workers): ([0-9.]+) (msg/s|ops/s)$`)
	benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+(\d+)\s+(.*)$`)
)

type bench struct {
	name, pkg, cpus string
	iterations      string
	metrics         [][2]string // value, unit
}

func main() {
	in := flag.String("in", ".croupier/bench.txt", "output of make bench (of make reliability with -reliability)")
	out := flag.String("out", "docs/benchmarks.md", "document to rewrite")
	rel := flag.Bool("reliability", false, "write the reliability table from the rows of make reliability")
	flag.Parse()
	do := run
	if *rel {
		do = runReliability
	}
	if err := do(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "benchdoc:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	var (
		machine, cores, cpu, pkg string
		refs                     [][2]string
		pipeline                 float64
		others                   []string
		benches                  []bench
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for first := true; sc.Scan(); first = false {
		line := strings.TrimSpace(sc.Text())
		switch {
		case first:
			machine = line
		case strings.HasPrefix(line, "cores: "):
			cores = strings.TrimPrefix(line, "cores: ")
		case strings.HasPrefix(line, "cpu: "):
			cpu = strings.TrimPrefix(line, "cpu: ")
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimPrefix(line, "pkg: ")
		case refLine.MatchString(line):
			m := refLine.FindStringSubmatch(line)
			refs = append(refs, [2]string{m[1], m[2] + " " + m[3]})
			if strings.HasPrefix(m[1], "pipeline") {
				pipeline, _ = strconv.ParseFloat(m[2], 64)
			}
		case strings.HasPrefix(line, "postgres15 "), strings.HasPrefix(line, "PostgreSQL 15 reference"), strings.HasPrefix(line, "reference "):
			others = append(others, line)
		case benchLine.MatchString(line):
			m := benchLine.FindStringSubmatch(line)
			b := bench{name: m[1], pkg: strings.TrimPrefix(pkg, "github.com/croupier-crm/croupier/"), cpus: strings.TrimPrefix(m[2], "-"), iterations: m[3]}
			fields := strings.Fields(m[4])
			for i := 0; i+1 < len(fields); i += 2 {
				b.metrics = append(b.metrics, [2]string{fields[i], fields[i+1]})
			}
			benches = append(benches, b)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(benches) == 0 {
		return fmt.Errorf("%s holds no benchmark results", in)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Latest run, %s\n\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "Command: `make bench` (the reference first, then every benchmark, one run). Machine: %s, %s cores", machine, cores)
	if cpu != "" {
		fmt.Fprintf(&b, " (%s)", cpu)
	}
	fmt.Fprintf(&b, ", %s.\n\n", runtime.Version())
	if len(refs) > 0 {
		fmt.Fprintln(&b, "| reference, same run (`../shared/bench/natsceiling`) | figure |")
		fmt.Fprintln(&b, "| --- | --- |")
		for _, r := range refs {
			fmt.Fprintf(&b, "| %s | %s |\n", r[0], r[1])
		}
		fmt.Fprintln(&b)
	}
	for _, o := range others {
		fmt.Fprintf(&b, "%s\n\n", o)
	}
	fmt.Fprintln(&b, "| benchmark | package | iterations | figures | ratio to the pipeline ceiling |")
	fmt.Fprintln(&b, "| --- | --- | --- | --- | --- |")
	for _, bn := range benches {
		var figs, ratios []string
		for _, m := range bn.metrics {
			if m[1] == "ns/op" && m[0] == "0" {
				continue
			}
			figs = append(figs, m[0]+" "+m[1])
			if v, err := strconv.ParseFloat(m[0], 64); err == nil && pipeline > 0 && (m[1] == "events/s" || m[1] == "jobs/s") {
				ratios = append(ratios, fmt.Sprintf("%.2f (%s)", v/pipeline, m[1]))
			}
		}
		name := bn.name
		if bn.cpus != "" {
			name += " (GOMAXPROCS " + bn.cpus + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name, bn.pkg, bn.iterations, strings.Join(figs, ", "), strings.Join(ratios, ", "))
	}

	return rewrite(out, b.String())
}

// runReliability writes the table of docs/reliability.md: one row per line of the input
// ("what | load | faults or inputs | lost | duplicated | what held").
func runReliability(in, out string) error {
	raw, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nCommand: `make reliability`, %s, %s/%s, %d cores, %s.\n\n", time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Fprintln(&b, "| what | load held | faults survived, inputs tried | lost | duplicated | what held |")
	fmt.Fprintln(&b, "| --- | --- | --- | --- | --- | --- |")
	rows := 0
	for line := range strings.SplitSeq(string(raw), "\n") {
		cells := strings.Split(strings.TrimSpace(line), " | ")
		if len(cells) != 6 {
			continue
		}
		for i := range cells {
			cells[i] = strings.ReplaceAll(strings.TrimSpace(cells[i]), "|", "/")
		}
		fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
		rows++
	}
	if rows == 0 {
		return fmt.Errorf("%s holds no reliability rows", in)
	}
	return rewrite(out, b.String())
}

// rewrite puts body between the markers, replacing the generated section of out (or
// inserting it before the first second-level heading).
func rewrite(out, body string) error {
	section := begin + "\n" + body + "\n" + end + "\n"
	raw, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	doc := string(raw)
	if i, j := strings.Index(doc, begin), strings.Index(doc, end); i >= 0 && j > i {
		doc = doc[:i] + section + doc[j+len(end)+1:]
	} else if k := strings.Index(doc, "\n## "); k >= 0 {
		doc = doc[:k+1] + section + "\n" + doc[k+1:]
	} else {
		doc += "\n" + section
	}
	return os.WriteFile(out, []byte(doc), 0o644)
}
