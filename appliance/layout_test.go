package appliance

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// goList returns, for every package of the module, its imports (test
// imports included) and its doc comment.
func goList(t *testing.T) map[string]struct {
	imports []string
	doc     string
} {
	t.Helper()
	cmd := exec.Command("go", "list", "-tags", "sqlite_fts5", "-f",
		`{{.ImportPath}}|{{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}|{{.Doc}}`, "preau/...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]struct {
		imports []string
		doc     string
	}{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "|", 3)
		if len(f) != 3 {
			continue
		}
		pkgs[f[0]] = struct {
			imports []string
			doc     string
		}{strings.Fields(f[1]), f[2]}
	}
	return pkgs
}

// component returns the top-level component of a package path
// ("preau/services/content" → "services/content"), the unit between which
// imports are forbidden. services/ holds several components.
func component(pkg string) string {
	p := strings.TrimPrefix(pkg, "preau/")
	parts := strings.Split(p, "/")
	if parts[0] == "services" && len(parts) > 1 {
		return "services/" + parts[1]
	}
	return parts[0]
}

// TestImportDirection enforces STYLE 3: cmd → appliance → components, and
// components never import each other. Each rule says why.
func TestImportDirection(t *testing.T) {
	pkgs := goList(t)
	if len(pkgs) < 5 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	components := map[string]bool{"captive": true, "sync": true, "firmware": true, "image": true}
	for pkg, p := range pkgs {
		from := component(pkg)
		for _, imp := range p.imports {
			if !strings.HasPrefix(imp, "preau/") && imp != "preau" {
				continue
			}
			to := component(imp)
			switch {
			case to == "cmd":
				t.Errorf("%s imports %s: nothing imports a command", pkg, imp)
			case imp == "preau/appliance" && from != "cmd" && pkg != "preau/appliance":
				t.Errorf("%s imports %s: only cmd/preau may import the composition root", pkg, imp)
			case to == "appliance" && from != "appliance" && from != "cmd":
				t.Errorf("%s imports %s: components are wired by appliance, they never import it", pkg, imp)
			case (components[from] || strings.HasPrefix(from, "services/")) && from != to &&
				!(strings.HasPrefix(from, "services/") && to == "services/internal"):
				t.Errorf("%s imports %s: components do not import each other; declare an interface and let appliance wire it", pkg, imp)
			}
		}
	}
}

// TestEveryPackageHasADocComment enforces STYLE 13.
func TestEveryPackageHasADocComment(t *testing.T) {
	for pkg, p := range goList(t) {
		if strings.TrimSpace(p.doc) == "" {
			t.Errorf("%s has no package doc comment", pkg)
		}
	}
}

func TestComponentOf(t *testing.T) {
	tests := map[string]string{
		"preau/services/content":               "services/content",
		"preau/services/internal/httpserve":    "services/internal",
		"preau/appliance/store":                "appliance",
		"preau/sync/uplink":                    "sync",
		"preau/cmd/preau":                      "cmd",
		"preau/appliance/internal/browsertest": "appliance",
	}
	for in, want := range tests {
		if got := component(in); got != want {
			t.Errorf("component(%q) = %q, want %q", in, got, want)
		}
	}
}
