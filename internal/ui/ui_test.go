package ui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTestHandler(t testing.TB) http.Handler {
	t.Helper()
	h, err := New(Config{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(t testing.TB, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

func TestPagesRender(t *testing.T) {
	h := newTestHandler(t)
	f := func(target, page string) {
		t.Helper()
		rec := get(t, h, target)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
		}
		body := rec.Body.String()
		if !strings.Contains(body, `data-page="`+page+`"`) {
			t.Fatalf("GET %s: page %q not rendered:\n%s", target, page, body)
		}
		for _, want := range []string{`/static/app.js`, `/static/vendor/uPlot.iife.min.js`, `id="tp-from"`, `trenchcoat test`} {
			if !strings.Contains(body, want) {
				t.Fatalf("GET %s: missing %q", target, want)
			}
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Fatalf("GET %s: CSP %q", target, csp)
		}
	}
	f("/slos", "slos")
	f("/slos/tickets-server-success-rate?breakdown=cloud_region", "slo")
	f("/services", "services")
	f("/services/tickets-server?groupBy=cloud.availability_zone", "service")
	f("/service-map", "servicemap")
	f("/traces?q=%7Bstatus%3Derror%7D&metric=errors&groupBy=resource.aws.ecs.task.family&tab=errors", "traces")
	f("/traces/0123456789abcdef0123456789abcdef", "trace")
	f("/logs", "logs")
	f("/logs/group?name=%2Faws%2Frds%2Finstance%2Fx%2Fpostgresql&filter=FATAL", "loggroup")
	f("/explore?left=up&leftLang=promql&split=1", "explore")
	f("/alerts", "alerts")
	f("/investigations", "investigations")
	f("/investigations/abc", "investigation")

	if rec := get(t, h, "/"); rec.Code != http.StatusFound || rec.Header().Get("Location") != "/slos" {
		t.Fatalf("GET /: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if rec := get(t, h, "/no/such/page"); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `data-page="notfound"`) {
		t.Fatalf("GET /no/such/page: %d", rec.Code)
	}
}

func TestTimeRangeCarriedByNav(t *testing.T) {
	body := get(t, newTestHandler(t), "/services?from=now-6h&refresh=30s").Body.String()
	if !strings.Contains(body, `href="/slos?from=now-6h&amp;refresh=30s"`) {
		t.Fatalf("nav links lose the time range:\n%s", body)
	}
	if !strings.Contains(body, `data-current="now-6h"`) || !strings.Contains(body, `data-current="30s"`) {
		t.Fatal("time picker does not show the URL's range")
	}
}

// Links written by the detective and alerts use start/end, /logs?group=
// and /explore?q=; they land on the matching page and parameters.
func TestCanonicalRedirects(t *testing.T) {
	h := newTestHandler(t)
	f := func(target, want string) {
		t.Helper()
		rec := get(t, h, target)
		if rec.Code != http.StatusFound || rec.Header().Get("Location") != want {
			t.Fatalf("GET %s: %d %q, want %q", target, rec.Code, rec.Header().Get("Location"), want)
		}
	}
	f("/logs?group=%2Faws%2Frds%2Fx&start=10&end=20", "/logs/group?from=10&name=%2Faws%2Frds%2Fx&to=20")
	f("/explore?q=aws_rds_database_connections_sum&start=1&end=2", "/explore?from=1&left=aws_rds_database_connections_sum&leftLang=promql&to=2")
	f("/explore?q=%7Blog_group%3D%22g%22%7D", "/explore?left=%7Blog_group%3D%22g%22%7D&leftLang=logql")
	f("/traces?q=%7B+resource.service.name+%3D+%22a%22+%7D&start=1&end=2", "/traces?from=1&q=%7B+resource.service.name+%3D+%22a%22+%7D&to=2")
}

// Telemetry strings reach the server-rendered part of pages only through
// the URL (filters, names); html/template must escape them.
func TestEscapesUntrustedStrings(t *testing.T) {
	h := newTestHandler(t)
	const xss = `<img src=x onerror=alert(1)>`
	f := func(target string) {
		t.Helper()
		body := get(t, h, target).Body.String()
		if strings.Contains(body, xss) || strings.Contains(body, "<img") {
			t.Fatalf("GET %s: unescaped markup in page:\n%s", target, body)
		}
		if !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
			t.Fatalf("GET %s: escaped text missing:\n%s", target, body)
		}
	}
	f("/traces?q=" + urlEscape(`{name="`+xss+`"}`))
	f("/logs/group?name=" + urlEscape(xss) + "&filter=" + urlEscape(xss))
	f("/slos/" + urlPathEscape(xss))
	f("/services/" + urlPathEscape(xss))
	body := get(t, h, `/traces?from=now-1h"><script>alert(1)</script>`).Body.String()
	if strings.Contains(body, "<script>alert(1)") {
		t.Fatal("time parameter injected a script")
	}
}

func TestStaticAssets(t *testing.T) {
	h := newTestHandler(t)
	f := func(path, ctype string, minSize int) {
		t.Helper()
		rec := get(t, h, path)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d", path, rec.Code)
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, ctype) {
			t.Fatalf("GET %s: content type %q, want %q", path, ct, ctype)
		}
		if rec.Body.Len() < minSize {
			t.Fatalf("GET %s: %d bytes", path, rec.Body.Len())
		}
	}
	f("/static/app.js", "text/javascript", 100)
	f("/static/app.css", "text/css", 100)
	f("/static/vendor/uPlot.iife.min.js", "text/javascript", 20000)
	f("/static/vendor/uPlot.min.css", "text/css", 500)
	if rec := get(t, h, "/static/nope.js"); rec.Code != http.StatusNotFound {
		t.Fatalf("missing asset: %d", rec.Code)
	}
}

// Every module a script imports, and every page's module, is embedded: a
// typo would otherwise show only in a browser.
func TestModuleGraph(t *testing.T) {
	imp := regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^'"]*from\s+'(\.[^']+)'`)
	err := fs.WalkDir(staticFS, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".js") || strings.Contains(path, "/vendor/") {
			return err
		}
		b, err := fs.ReadFile(staticFS, path)
		if err != nil {
			return err
		}
		dir := path[:strings.LastIndex(path, "/")]
		for _, m := range imp.FindAllStringSubmatch(string(b), -1) {
			target := cleanJoin(dir, m[1])
			if _, err := fs.Stat(staticFS, target); err != nil {
				t.Errorf("%s imports %s: %v", path, m[1], err)
			}
		}
		if strings.Contains(string(b), ".innerHTML") || strings.Contains(string(b), "insertAdjacentHTML") {
			t.Errorf("%s writes HTML from strings; build nodes and set textContent instead", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for key, p := range pages {
		if key == "notfound" {
			continue
		}
		if _, err := fs.Stat(staticFS, "static/pages/"+p.name+".js"); err != nil {
			t.Errorf("page %s has no module: %v", key, err)
		}
	}
}

func cleanJoin(dir, rel string) string {
	parts := strings.Split(dir, "/")
	for _, seg := range strings.Split(rel, "/") {
		switch seg {
		case ".":
		case "..":
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, seg)
		}
	}
	return strings.Join(parts, "/")
}

func urlEscape(s string) string {
	return strings.NewReplacer("%", "%25", "&", "%26", "+", "%2B", " ", "%20", "#", "%23", "?", "%3F").Replace(s)
}
func urlPathEscape(s string) string {
	return strings.NewReplacer("%", "%25", " ", "%20", "#", "%23", "?", "%3F", "/", "%2F").Replace(s)
}
