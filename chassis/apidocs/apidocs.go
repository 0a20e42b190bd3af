// Package apidocs serves the interactive API documentation page: Swagger UI
// over the platform's OpenAPI documents, one selectable at a time, with "Try
// it out" calling the API on the page's own origin.
//
// Everything the page loads is in the binary (swagger-ui-dist at Version,
// unchanged, next to its licence files in swagger-ui/), so opening it makes
// no request to any other host; its Content-Security-Policy allows only its
// own origin, so a later change that tried to would be blocked by the
// browser too. The page is a fixed set of files (Paths), which lets a
// gateway list each of them as public without opening a prefix.
package apidocs

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// Version is the swagger-ui-dist release in swagger-ui/.
const Version = "5.35.0"

// Prefix is where the page is served: the page itself, and its files below it.
const Prefix = "/docs"

// ContentSecurityPolicy lets the page load scripts, styles and documents
// from its own origin only. Swagger UI sets styles through the DOM (allowed)
// and its stylesheet draws icons from data: URLs, hence img-src data:. The
// one inline style block it renders, inside the top bar's SVG logo, is
// allowed by its hash (logoStyleHash) and nothing else inline is.
// connect-src 'self' is what keeps "Try it out" on the gateway the page
// came from.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self' '" + logoStyleHash + "'; " +
	"img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// logoStyleHash is the CSP hash of the <style> in swagger-ui 5.35.0's logo,
// ".logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}".
// Another release may change it: the browser test then reports the
// violation with the new hash.
const logoStyleHash = "sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w="

//go:embed swagger-ui/swagger-ui-bundle.js swagger-ui/swagger-ui-standalone-preset.js swagger-ui/swagger-ui.css
var swaggerUI embed.FS

//go:embed page/index.html page/docs.js page/docs.css
var page embed.FS

// files maps each served file below Prefix to where it is embedded.
var files = []struct{ name, embedded, contentType string }{
	{"swagger-ui-bundle.js", "swagger-ui/swagger-ui-bundle.js", "text/javascript; charset=utf-8"},
	{"swagger-ui-standalone-preset.js", "swagger-ui/swagger-ui-standalone-preset.js", "text/javascript; charset=utf-8"},
	{"swagger-ui.css", "swagger-ui/swagger-ui.css", "text/css; charset=utf-8"},
	{"docs.js", "page/docs.js", "text/javascript; charset=utf-8"},
	{"docs.css", "page/docs.css", "text/css; charset=utf-8"},
}

// Paths lists every path the handler serves: Prefix (the page) and each of
// its files. Nothing else below Prefix exists.
func Paths() []string {
	out := []string{Prefix}
	for _, f := range files {
		out = append(out, Prefix+"/"+f.name)
	}
	return out
}

// Document is one OpenAPI document the page offers.
type Document struct {
	// Name is shown in the page's document selector.
	Name string `json:"name"`
	// URL is where the browser fetches the document: a path on the page's
	// origin ("/blog/openapi.yaml"). The document's relative server URLs
	// resolve against it, so "Try it out" calls the same origin.
	URL string `json:"url"`
}

// Options configure the page.
type Options struct {
	// Title is the page's title; "" means "API documentation".
	Title string
	// Documents are offered in this order, the first one shown first.
	Documents []Document
}

// Handler serves the page and its files. Build it with New.
type Handler struct {
	byPath map[string]asset
}

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// New renders the page for opts. Document URLs must be paths on the page's
// origin: the page's policy would block any other.
func New(opts Options) (*Handler, error) {
	if len(opts.Documents) == 0 {
		return nil, errors.New("apidocs: no documents")
	}
	for _, d := range opts.Documents {
		if d.Name == "" || !strings.HasPrefix(d.URL, "/") || strings.HasPrefix(d.URL, "//") {
			return nil, fmt.Errorf("apidocs: document %q at %q: want a name and a path on the page's origin", d.Name, d.URL)
		}
	}
	if opts.Title == "" {
		opts.Title = "API documentation"
	}
	docs, err := json.Marshal(opts.Documents)
	if err != nil {
		return nil, err
	}
	tmpl, err := template.ParseFS(page, "page/index.html")
	if err != nil {
		return nil, err
	}
	var index bytes.Buffer
	if err := tmpl.Execute(&index, struct {
		Title, Documents, Prefix string
		List                     []Document
	}{opts.Title, string(docs), Prefix, opts.Documents}); err != nil {
		return nil, err
	}

	h := &Handler{byPath: map[string]asset{}}
	h.byPath[Prefix] = newAsset(index.Bytes(), "text/html; charset=utf-8")
	for _, f := range files {
		fsys := swaggerUI
		if strings.HasPrefix(f.embedded, "page/") {
			fsys = page
		}
		body, err := fsys.ReadFile(f.embedded)
		if err != nil {
			return nil, err
		}
		h.byPath[Prefix+"/"+f.name] = newAsset(body, f.contentType)
	}
	return h, nil
}

func newAsset(body []byte, contentType string) asset {
	sum := sha256.Sum256(body)
	return asset{body: body, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

// ServeHTTP answers GET and HEAD of Paths (a trailing slash is ignored);
// anything else is a plain 404. Routers that answer unknown paths in their
// own way should route only Paths here.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	a, ok := h.byPath[p]
	if !ok || r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	// Revalidated on every load (a 304 while unchanged), so a new release
	// of the page is never mixed with cached files of the old one.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
