package browsertest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// axeTags are the rule sets Préau must pass: WCAG 2.1 A and AA (what RGAA
// 4.1 builds on) plus axe's best practices.
func axeTags() []string {
	return []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"}
}

// Violation is one axe-core rule that failed on the page.
type Violation struct {
	ID      string   // rule id, e.g. "image-alt"
	Impact  string   // minor, moderate, serious or critical
	Help    string   // what the rule asks for
	HelpURL string   // Deque's page about the rule
	Nodes   []string // each failing element: its CSS target, then its HTML
}

func (v Violation) String() string {
	return fmt.Sprintf("%s (%s): %s [%s]", v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "; "))
}

// Serious keeps the violations whose impact is serious or critical, the ones
// a page must never have.
func Serious(vs []Violation) []Violation {
	var out []Violation
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			out = append(out, v)
		}
	}
	return out
}

// AxePath returns where axe.min.js is expected: testdata/axe/node_modules
// next to this package's source, installed by `make test-deps`.
func AxePath() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("testdata", "axe", "node_modules", "axe-core", "axe.min.js")
	}
	return filepath.Join(filepath.Dir(file), "testdata", "axe", "node_modules", "axe-core", "axe.min.js")
}

// ErrAxeMissing says axe-core is not installed.
var ErrAxeMissing = errors.New("axe-core absent : lancez « make deps » (ou make test-deps) / axe-core missing: run make deps (or make test-deps)")

// axeRun runs axe on the whole document and hands back only what Violation
// needs, so the answer stays small.
const axeRun = `
const tags = arguments[0];
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})
  .then(r => done({violations: r.violations.map(v => ({
    id: v.id, impact: v.impact || '', help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map(n => n.target.join(' ') + ' ' + n.html.slice(0, 200)),
  }))}))
  .catch(e => done({error: String(e && e.stack || e)}));
`

// Axe injects axe-core into the current page (once per page) and returns the
// WCAG 2.1 A/AA and best-practice violations it finds. Injection goes through
// WebDriver, not a <script> tag, so the page's Content-Security-Policy does
// not get in the way.
func (b *Browser) Axe() ([]Violation, error) {
	present, err := b.Exec("return typeof window.axe === 'object' && typeof window.axe.run === 'function';")
	if err != nil {
		return nil, fmt.Errorf("run axe: %w", err)
	}
	if present != true {
		src, err := os.ReadFile(AxePath())
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("run axe: read %s: %w", AxePath(), ErrAxeMissing)
		}
		if err != nil {
			return nil, fmt.Errorf("run axe: %w", err)
		}
		// axe.min.js sets window.axe itself; wrapped in a function by
		// WebDriver it needs the global `this`, which a sloppy-mode function
		// called without receiver has.
		if _, err := b.Exec(string(src) + "\n;return typeof window.axe;"); err != nil {
			return nil, fmt.Errorf("run axe: inject axe-core: %w", err)
		}
	}
	raw, err := b.ExecAsync(axeRun, axeTags())
	if err != nil {
		return nil, fmt.Errorf("run axe: %w", err)
	}
	// Round-trip through JSON into typed structs.
	data, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("run axe: re-encode result: %w", err)
	}
	var res struct {
		Error      string `json:"error"`
		Violations []struct {
			ID      string   `json:"id"`
			Impact  string   `json:"impact"`
			Help    string   `json:"help"`
			HelpURL string   `json:"helpUrl"`
			Nodes   []string `json:"nodes"`
		} `json:"violations"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("run axe: decode result: %w", err)
	}
	if res.Error != "" {
		return nil, fmt.Errorf("run axe: %s", res.Error)
	}
	out := make([]Violation, 0, len(res.Violations))
	for _, v := range res.Violations {
		out = append(out, Violation{ID: v.ID, Impact: v.Impact, Help: v.Help, HelpURL: v.HelpURL, Nodes: v.Nodes})
	}
	return out, nil
}
