package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// publicRoutes are the only routes a stranger may use. Adding a public
// route means adding it here, on purpose.
var publicRoutes = map[string]bool{
	"GET /console/static/{name}":   true,
	"GET /console":                 true,
	"GET /console/connexion":       true,
	"POST /console/connexion":      true,
	"GET /console/connexion/code":  true,
	"POST /console/connexion/code": true,
	"GET /console/installation":    true,
	"POST /console/installation":   true,
}

// accountRoutes are the only routes an enseignant account may use
// (its own account page, TOTP and password, and sign-out).
var accountRoutes = map[string]bool{
	"POST /console/deconnexion":         true,
	"GET /console/compte":               true,
	"POST /console/compte/mot-de-passe": true,
	"GET /console/compte/totp":          true,
	"POST /console/compte/totp":         true,
	"POST /console/compte/totp/retirer": true,
}

// concretePath fills a route pattern's wildcards.
func concretePath(pattern string) string {
	r := strings.NewReplacer("{name}", "console.css", "{mac}", "f0:18:98:00:00:01", "{$}", "")
	return r.Replace(pattern)
}

func (h *harness) peerCalls() int {
	h.energy.mu.Lock()
	e := h.energy.calls
	h.energy.mu.Unlock()
	h.updates.mu.Lock()
	u := h.updates.calls
	h.updates.mu.Unlock()
	return h.src.count() + h.devs.count() + e + u
}

// refused reports whether an answer turned the request away: 401 or 403,
// or a redirect to the sign-in page (or, for a teacher on the dashboard,
// to their account page).
func refused(a answer) bool {
	switch a.status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return true
	case http.StatusSeeOther:
		loc := a.header.Get("Location")
		return strings.HasPrefix(loc, "/console/connexion") || loc == "/console/compte"
	}
	return false
}

// TestEveryRouteRefusesStrangers walks the routing table the handler is
// built from: every route that is not explicitly public refuses a request
// without a session, with a bearer token outside /api/, and with a role
// below the route's, before its handler runs.
func TestEveryRouteRefusesStrangers(t *testing.T) {
	h := newHarness(t)
	h.account("tech", RoleTechnicien)
	teacher := h.signedIn("prof", RoleEnseignant)
	direction := h.signedIn("dir", RoleDirection)
	stranger := h.newUser()
	readToken, _, err := h.c.CreateAPIToken(t.Context(), "lecture", RoleDirection, "tech")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, rt := range h.c.Routes() {
		key := rt.Method + " " + rt.Pattern
		if seen[key] {
			t.Errorf("route %s registered twice", key)
		}
		seen[key] = true
		if !strings.HasPrefix(rt.Pattern, "/console") && !strings.HasPrefix(rt.Pattern, "/api/v1/") {
			t.Errorf("route %s outside /console and /api/v1/", key)
		}
		switch rt.Role {
		case AccessPublic:
			if !publicRoutes[key] {
				t.Errorf("route %s is public but not in the test's list of public routes", key)
			}
			continue
		case AccessAccount:
			if !accountRoutes[key] {
				t.Errorf("route %s is open to every account but not in the test's list of account routes", key)
			}
		case AccessDirection, AccessTechnicien:
		default:
			t.Errorf("route %s: unknown access %q", key, rt.Role)
			continue
		}
		if publicRoutes[key] {
			t.Errorf("route %s should be public", key)
		}
		path := concretePath(rt.Pattern)
		type attempt struct {
			who  string
			u    *user
			auth string
		}
		attempts := []attempt{{"stranger", stranger, ""}, {"stranger with a forged cookie", stranger, "cookie"}}
		if !strings.HasPrefix(path, "/api/") {
			attempts = append(attempts, attempt{"read token outside the API", stranger, "bearer"})
		}
		if rt.Role == AccessDirection || rt.Role == AccessTechnicien {
			attempts = append(attempts, attempt{"enseignant", teacher, ""})
		}
		if rt.Role == AccessTechnicien {
			attempts = append(attempts, attempt{"direction", direction, ""})
			if strings.HasPrefix(path, "/api/") {
				attempts = append(attempts, attempt{"read token", stranger, "bearer"})
			}
		}
		for _, at := range attempts {
			t.Run(key+"/"+at.who, func(t *testing.T) {
				before := h.peerCalls()
				var body *strings.Reader
				if stateChanging(rt.Method) {
					body = strings.NewReader(url.Values{"csrf": {randomToken(32)}}.Encode())
				} else {
					body = strings.NewReader("")
				}
				req, _ := http.NewRequest(rt.Method, h.srv.URL+path, body)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Origin", h.srv.URL)
				req.Header.Set("Sec-Fetch-Site", "same-origin")
				switch at.auth {
				case "cookie":
					req.Header.Set("Cookie", sessionCookie+"="+randomToken(32))
				case "bearer":
					req.Header.Set("Authorization", "Bearer "+readToken)
				}
				a := at.u.do(req)
				if !refused(a) {
					t.Errorf("%s %s as %s: status %d, Location %q: not refused", rt.Method, path, at.who, a.status, a.header.Get("Location"))
				}
				if strings.Contains(a.body, "ipad-cm2-01") || strings.Contains(a.body, "imprimante-salle-maitres") {
					t.Errorf("%s %s as %s: the answer shows protected data", rt.Method, path, at.who)
				}
				if got := h.peerCalls(); got != before {
					t.Errorf("%s %s as %s: the handler ran (%d calls to the data sources)", rt.Method, path, at.who, got-before)
				}
			})
		}
	}
	for key := range publicRoutes {
		if !seen[key] {
			t.Errorf("public route %s is not registered", key)
		}
	}
}

// Unknown addresses answer 404 without data, signed in or not.
func TestUnknownPaths(t *testing.T) {
	h := newHarness(t)
	for _, p := range []string{"/console/admin", "/console/appareils/x", "/api/v1/secret", "/api/v2/status", "/console/static/../console.go", "/console/console.go"} {
		a := h.newUser().get(p)
		if a.status == http.StatusTemporaryRedirect && a.header.Get("Location") == "/console/console.go" {
			continue // the mux cleans dot segments; the clean path is then a 404
		}
		if a.status != http.StatusNotFound && !refused(a) {
			t.Errorf("GET %s: %d", p, a.status)
		}
	}
}
