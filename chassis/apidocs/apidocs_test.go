package apidocs_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"html"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"blogplatform/chassis/apidocs"
)

var platformDocs = apidocs.Options{
	Title: "Blog platform API",
	Documents: []apidocs.Document{
		{Name: "auth", URL: "/auth/openapi.yaml"},
		{Name: "blog", URL: "/blog/openapi.yaml"},
	},
}

func newHandler(t *testing.T) *apidocs.Handler {
	t.Helper()
	h, err := apidocs.New(platformDocs)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestServesEveryPathWithItsPolicy(t *testing.T) {
	h := newHandler(t)
	wantType := map[string]string{
		"/docs":                                 "text/html; charset=utf-8",
		"/docs/swagger-ui-bundle.js":            "text/javascript; charset=utf-8",
		"/docs/swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
		"/docs/swagger-ui.css":                  "text/css; charset=utf-8",
		"/docs/docs.js":                         "text/javascript; charset=utf-8",
		"/docs/docs.css":                        "text/css; charset=utf-8",
	}
	if got := apidocs.Paths(); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(maps.Keys(wantType))) {
		t.Fatalf("Paths() = %v", got)
	}
	for _, p := range apidocs.Paths() {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, p, nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("%s %s: %d", method, p, rec.Code)
			}
			hdr := rec.Header()
			if hdr.Get("Content-Type") != wantType[p] {
				t.Errorf("%s %s: Content-Type %q, want %q", method, p, hdr.Get("Content-Type"), wantType[p])
			}
			if hdr.Get("Content-Security-Policy") != apidocs.ContentSecurityPolicy || hdr.Get("X-Content-Type-Options") != "nosniff" ||
				hdr.Get("ETag") == "" || hdr.Get("Cache-Control") != "no-cache" {
				t.Errorf("%s %s: headers %v", method, p, hdr)
			}
			if method == http.MethodHead && rec.Body.Len() != 0 || method == http.MethodGet && rec.Body.Len() == 0 {
				t.Errorf("%s %s: body of %d bytes", method, p, rec.Body.Len())
			}
		}
	}

	// An unchanged file is a 304 for a browser that has it.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/docs/swagger-ui.css", nil))
	req := httptest.NewRequest(http.MethodGet, "/docs/swagger-ui.css", nil)
	req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", rec.Code)
	}
}

func TestUnknownPathsAndMethods(t *testing.T) {
	h := newHandler(t)
	for _, c := range []struct{ method, path string }{
		{"GET", "/docs/LICENSE"},
		{"GET", "/docs/swagger-ui-bundle.js.map"},
		{"GET", "/docs/../docs"},
		{"GET", "/docsx"},
		{"GET", "/"},
		{"POST", "/docs"},
		{"DELETE", "/docs/docs.js"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s %s: %d, want 404", c.method, c.path, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/docs/", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "<div id=\"swagger-ui\"") {
		t.Errorf("GET /docs/: %d", rec.Code)
	}
}

// The page loads only its own files, by absolute path below /docs, lists the
// documents for the script, and carries no inline script or style the
// policy would block.
func TestPageReferencesOnlyItsOwnFiles(t *testing.T) {
	h := newHandler(t)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/docs", nil))
	body := rec.Body.String()

	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(body, -1)
	served := apidocs.Paths()
	var loaded []string
	for _, m := range refs {
		ref := m[1]
		switch {
		case ref == "data:,": // the empty favicon: no request at all
		case slices.Contains(served, ref):
			loaded = append(loaded, ref)
		case ref == "/auth/openapi.yaml" || ref == "/blog/openapi.yaml": // the noscript links
		default:
			t.Errorf("the page refers to %q, which is not one of its files", ref)
		}
	}
	if len(loaded) != len(served)-1 {
		t.Errorf("the page loads %v, want every file of %v", loaded, served[1:])
	}
	if regexp.MustCompile(`<script>|<style|\sstyle="|\son[a-z]+="`).MatchString(body) {
		t.Error("inline script or style in the page; its policy allows neither")
	}

	m := regexp.MustCompile(`data-documents="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no data-documents")
	}
	var docs []apidocs.Document
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &docs); err != nil {
		t.Fatalf("data-documents %q: %v", m[1], err)
	}
	if !slices.Equal(docs, platformDocs.Documents) {
		t.Errorf("data-documents = %+v, want %+v", docs, platformDocs.Documents)
	}
}

func TestNewRejectsDocumentsElsewhere(t *testing.T) {
	for _, docs := range [][]apidocs.Document{
		nil,
		{{Name: "x", URL: "https://cdn.example/openapi.yaml"}},
		{{Name: "x", URL: "//cdn.example/openapi.yaml"}},
		{{Name: "x", URL: "openapi.yaml"}},
		{{Name: "", URL: "/openapi.yaml"}},
	} {
		if _, err := apidocs.New(apidocs.Options{Documents: docs}); err == nil {
			t.Errorf("New accepted %+v", docs)
		}
	}
}

// The shipped Swagger UI files are the release's own: SHA256SUMS lists every
// file of swagger-ui/ (licences included) and each must match, so an edit by
// hand or a partial upgrade fails here.
func TestSwaggerUIFilesMatchTheirChecksums(t *testing.T) {
	f, err := os.Open(filepath.Join("swagger-ui", "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	listed := map[string]bool{"SHA256SUMS": true, "README.md": true}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", sc.Text())
		}
		data, err := os.ReadFile(filepath.Join("swagger-ui", name))
		if err != nil {
			t.Fatal(err)
		}
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("swagger-ui/%s does not match SHA256SUMS", name)
		}
		listed[name] = true
	}
	entries, err := os.ReadDir("swagger-ui")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !listed[e.Name()] {
			t.Errorf("swagger-ui/%s is not in SHA256SUMS", e.Name())
		}
	}
	for _, licence := range []string{"LICENSE", "NOTICE", "swagger-ui-bundle.js.LICENSE.txt", "swagger-ui-standalone-preset.js.LICENSE.txt"} {
		if !listed[licence] {
			t.Errorf("licence file %s is missing", licence)
		}
	}
	var pkg struct{ Name, Version, License string }
	data, err := os.ReadFile(filepath.Join("swagger-ui", "package.json"))
	if err == nil {
		err = json.Unmarshal(data, &pkg)
	}
	if err != nil || pkg.Name != "swagger-ui-dist" || pkg.Version != apidocs.Version || pkg.License != "Apache-2.0" {
		t.Errorf("package.json %+v (%v), want swagger-ui-dist %s, Apache-2.0", pkg, err, apidocs.Version)
	}
}
