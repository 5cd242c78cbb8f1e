// Package ui serves trenchcoat's web UI: server-rendered pages (one layout,
// html/template) whose whole state lives in the URL query, plus small
// vanilla JavaScript modules that read the JSON API of the same origin and
// draw charts with uPlot. Templates and static assets are embedded with
// go:embed; uPlot is copied from npm into static/vendor by web/vendor.sh and
// committed, so a build needs no npm and the binary fetches nothing at run
// time.
//
// Wiring (cmd/trenchcoat/serve.go), after the API routes are registered on
// apiMux:
//
//	uiHandler, err := ui.New(ui.Config{Logger: log, Version: version})
//	if err != nil {
//		return nil, err
//	}
//	apiMux.Handle("/", uiHandler) // the API stays under /api/v1/
//
// The handler answers every path outside /api/: the pages listed in
// [New], /static/..., and a 404 page for the rest.
//
// Telemetry strings are untrusted. Server side they only reach pages through
// html/template's contextual escaping; client side the scripts build DOM
// nodes and set textContent, never innerHTML with data.
package ui

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures the UI handler.
type Config struct {
	// Logger receives template errors; nil discards them.
	Logger *slog.Logger
	// Version is shown in the footer.
	Version string
	// DevDir, when set, serves static/ and templates/ from this directory
	// on disk (internal/ui of a checkout) instead of the embedded copies,
	// re-reading templates on every request, so that changes show on
	// reload while developing. Leave empty in production.
	DevDir string
}

// page is one server-rendered page: the template file that defines its
// "content" block and its title.
type page struct {
	name  string // template file name without .html, also the JS module's key
	title string
	nav   string // which nav entry is highlighted
}

var pages = map[string]page{
	"slos":           {"slos", "SLOs", "slos"},
	"slo":            {"slo", "SLO", "slos"},
	"services":       {"services", "Services", "services"},
	"service":        {"service", "Service", "services"},
	"servicemap":     {"servicemap", "Service map", "servicemap"},
	"traces":         {"traces", "Traces", "traces"},
	"trace":          {"trace", "Trace", "traces"},
	"logs":           {"logs", "Log groups", "logs"},
	"loggroup":       {"loggroup", "Log group", "logs"},
	"explore":        {"explore", "Explore", "explore"},
	"alerts":         {"alerts", "Alerts", "alerts"},
	"investigations": {"investigations", "Investigations", "investigations"},
	"investigation":  {"investigation", "Investigation", "investigations"},
	"notfound":       {"notfound", "Not found", ""},
}

type handler struct {
	cfg   Config
	log   *slog.Logger
	tmpls map[string]*template.Template
	mux   *http.ServeMux
}

// New returns the UI's http.Handler. Pages:
//
//	/                         redirects to /slos
//	/slos, /slos/{name}       SLO list and one SLO (?breakdown=label)
//	/services, /services/{name}, /service-map
//	/traces                   drilldown (?q=TraceQL&metric=&groupBy=&tab=)
//	/traces/{id}              waterfall
//	/logs, /logs/group        log groups, one group (?name=&filter=)
//	/explore                  split view (?left=&right=&leftLang=&rightLang=)
//	/alerts, /investigations, /investigations/{id}
//
// Every page takes from= and to= (now-1h, now, or Unix seconds) and
// refresh= (off, 10s, 30s, 1m).
func New(cfg Config) (http.Handler, error) {
	h := &handler{cfg: cfg, log: cfg.Logger, tmpls: map[string]*template.Template{}, mux: http.NewServeMux()}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if h.tmpls, err = parseTemplates(templateFS); err != nil {
		return nil, err
	}
	var static fs.FS = staticFS
	if cfg.DevDir != "" {
		static = os.DirFS(cfg.DevDir)
	}
	static, err = fs.Sub(static, "static")
	if err != nil {
		return nil, fmt.Errorf("BUG: ui static: %w", err)
	}
	fileServer := http.FileServerFS(static)
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Assets change with the binary; a short cache keeps reloads cheap
		// without serving stale scripts after an upgrade for long.
		w.Header().Set("Cache-Control", "public, max-age=300")
		fileServer.ServeHTTP(w, r)
	})))
	h.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/slos", http.StatusFound)
	})
	route := func(pattern, key string) {
		h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { h.render(w, r, key, http.StatusOK) })
	}
	route("GET /slos", "slos")
	route("GET /slos/{name}", "slo")
	route("GET /services", "services")
	route("GET /services/{name}", "service")
	route("GET /service-map", "servicemap")
	route("GET /traces", "traces")
	route("GET /traces/{id}", "trace")
	route("GET /logs", "logs")
	route("GET /logs/group", "loggroup")
	route("GET /explore", "explore")
	route("GET /alerts", "alerts")
	route("GET /investigations", "investigations")
	route("GET /investigations/{id}", "investigation")
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { h.render(w, r, "notfound", http.StatusNotFound) })
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The pages draw only from this origin; a strict policy turns any
	// escaping mistake into a blocked script instead of an XSS.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	h.mux.ServeHTTP(w, r)
}

// pageData is what every template sees. Name is the path's {name} or {id}.
type pageData struct {
	Page    string
	Title   string
	Nav     string
	Name    string
	Q       url.Values
	From    string
	To      string
	Refresh string
	Version string
	// TimeQuery is the time part of the query string, carried by nav
	// links so the time range survives moving between pages.
	TimeQuery string
}

// Link is path with the page's time range; the query is built by
// url.Values.Encode, so it is safe as a URL.
func (d pageData) Link(path string) template.URL {
	if d.TimeQuery == "" {
		return template.URL(path)
	}
	return template.URL(path + "?" + d.TimeQuery)
}

// Get returns the URL query parameter key (templates: {{.Get "q"}}).
func (d pageData) Get(key string) string { return d.Q.Get(key) }

func (h *handler) render(w http.ResponseWriter, r *http.Request, key string, code int) {
	p := pages[key]
	q := r.URL.Query()
	if path, canon, ok := canonical(key, r.URL.Path, q); ok {
		http.Redirect(w, r, path+"?"+canon.Encode(), http.StatusFound)
		return
	}
	d := pageData{Page: p.name, Title: p.title, Nav: p.nav, Q: q, Version: h.cfg.Version,
		From: orDefault(q.Get("from"), "now-1h"), To: orDefault(q.Get("to"), "now"), Refresh: orDefault(q.Get("refresh"), "off")}
	d.Name = r.PathValue("name")
	if d.Name == "" {
		d.Name = r.PathValue("id")
	}
	if d.Name != "" {
		d.Title = p.title + " " + d.Name
	}
	tq := url.Values{}
	for _, k := range []string{"from", "to", "refresh"} {
		if v := q.Get(k); v != "" {
			tq.Set(k, v)
		}
	}
	d.TimeQuery = tq.Encode()
	tmpls := h.tmpls
	if h.cfg.DevDir != "" {
		var err error
		if tmpls, err = parseTemplates(os.DirFS(h.cfg.DevDir)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	var buf bytes.Buffer
	if err := tmpls[key].ExecuteTemplate(&buf, "layout.html", d); err != nil {
		h.log.Error("ui: rendering page", "page", key, "err", err)
		http.Error(w, "rendering the page failed; see the server log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func navClass(cur, item string) string {
	if cur == item {
		return "active"
	}
	return ""
}

// parseTemplates parses the layout once and each page's "content" block
// into its own clone of it.
func parseTemplates(fsys fs.FS) (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(template.FuncMap{"navClass": navClass}).ParseFS(fsys, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("ui: layout: %w", err)
	}
	out := make(map[string]*template.Template, len(pages))
	for key, p := range pages {
		t, err := template.Must(layout.Clone()).ParseFS(fsys, "templates/"+p.name+".html")
		if err != nil {
			return nil, fmt.Errorf("ui: page %s: %w", key, err)
		}
		out[key] = t
	}
	return out, nil
}

// canonical maps the links other parts write (the detective's findings,
// alert annotations: start=/end= in Unix seconds, /logs?group=,
// /explore?q=) onto this UI's parameters. ok is false when the URL is
// already canonical.
func canonical(key, path string, q url.Values) (string, url.Values, bool) {
	changed := false
	move := func(from, to string) {
		if v, has := q[from]; has {
			if q.Get(to) == "" {
				q[to] = v
			}
			delete(q, from)
			changed = true
		}
	}
	move("start", "from")
	move("end", "to")
	switch key {
	case "logs":
		if q.Get("group") != "" {
			move("group", "name")
			path = "/logs/group"
		}
	case "explore":
		if q.Get("q") != "" {
			lang := guessLang(q.Get("q"))
			move("q", "left")
			q.Set("leftLang", lang)
		}
	}
	return path, q, changed
}

// guessLang tells the query language of a query from its look: TraceQL
// names attributes with a scope (resource., span.) or intrinsics; LogQL
// starts with a stream selector; anything else is PromQL.
func guessLang(s string) string {
	t := strings.TrimSpace(s)
	switch {
	case !strings.HasPrefix(t, "{"):
		return "promql"
	case strings.Contains(t, "resource.") || strings.Contains(t, "span.") || strings.Contains(t, "status") || strings.Contains(t, "duration") || t == "{}":
		return "traceql"
	default:
		return "logql"
	}
}
