package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"blogplatform/chassis/apidocs"
	"blogplatform/tools/internal/kongconf"
)

// The documentation page through the repository's own Kong files: /docs,
// each of its files and the two OpenAPI documents are served without a key,
// byte for byte what blog_service (and auth_service for its document)
// answers, with the page's own Content-Security-Policy; anything else below
// /docs, and any other method, is still refused without a key.
func TestDocsPageIsPublicThroughTheRepositoryKongFiles(t *testing.T) {
	docs, err := apidocs.New(apidocs.Options{Documents: []apidocs.Document{
		{Name: "auth", URL: "/auth/openapi.yaml"}, {Name: "blog", URL: "/blog/openapi.yaml"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	service := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == "/health/ready":
				w.WriteHeader(http.StatusOK)
			case r.URL.Path == "/openapi.yaml":
				w.Header().Set("Content-Type", "application/yaml")
				fmt.Fprintf(w, "openapi: 3.1.0\ninfo: {title: %s_service}\n", name)
			case name == "auth" && r.URL.Path == "/verify/apikey":
				if r.Header.Get("x-api-key") != goodKey {
					w.WriteHeader(http.StatusForbidden)
				}
			case name == "blog" && strings.HasPrefix(r.URL.Path, "/docs"):
				docs.ServeHTTP(w, r)
			default:
				w.WriteHeader(http.StatusNotFound)
			}
		})
	}
	addrs := map[string]string{}
	for _, host := range []string{"auth", "auth1", "auth2", "blog", "blog1", "blog2"} {
		srv := httptest.NewServer(service(strings.TrimRight(host, "12")))
		t.Cleanup(srv.Close)
		addrs[host] = srv.Listener.Addr().String()
	}

	for _, file := range []string{"kong.yml", "kong-load-balanced.yml"} {
		t.Run(file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "..", "..", "kong", file))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := kongconf.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			gw, err := New(Options{Kong: cfg, Resolve: func(host string, port int) ([]Endpoint, error) {
				addr, ok := addrs[host]
				if !ok || port != 8000 {
					return nil, fmt.Errorf("unknown host %s:%d", host, port)
				}
				return []Endpoint{{Name: host, Addr: addr}}, nil
			}})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(gw)
			t.Cleanup(func() { srv.Close(); gw.Close() })

			get := func(method, path string) (int, http.Header, string) {
				t.Helper()
				req, err := http.NewRequest(method, srv.URL+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, resp.Header, string(body)
			}

			for _, p := range append(apidocs.Paths(), "/docs/") {
				status, header, body := get(http.MethodGet, p)
				want := httptest.NewRecorder()
				docs.ServeHTTP(want, httptest.NewRequest(http.MethodGet, p, nil))
				if status != http.StatusOK || body != want.Body.String() {
					t.Errorf("GET %s without a key: %d, %d bytes (want 200, %d bytes)", p, status, len(body), want.Body.Len())
				}
				if header.Get("Content-Security-Policy") != apidocs.ContentSecurityPolicy {
					t.Errorf("GET %s: Content-Security-Policy %q", p, header.Get("Content-Security-Policy"))
				}
			}
			for _, svc := range []string{"auth", "blog"} {
				if status, _, body := get(http.MethodGet, "/"+svc+"/openapi.yaml"); status != http.StatusOK || !strings.Contains(body, svc+"_service") {
					t.Errorf("GET /%s/openapi.yaml without a key: %d %q", svc, status, body)
				}
			}
			for _, c := range []struct {
				method, path string
				status       int
			}{
				{http.MethodGet, "/docs/LICENSE", http.StatusUnauthorized},
				{http.MethodGet, "/docs/swagger-ui-bundle.js.map", http.StatusUnauthorized},
				{http.MethodGet, "/docsx", http.StatusUnauthorized},
				{http.MethodGet, "/blog/docs/x/../../list/latest", http.StatusUnauthorized},
				{http.MethodPost, "/docs", http.StatusNotFound}, // the not-found route
				{http.MethodPost, "/blog/openapi.yaml", http.StatusUnauthorized},
			} {
				if status, _, body := get(c.method, c.path); status != c.status {
					t.Errorf("%s %s without a key: %d %s, want %d", c.method, c.path, status, body, c.status)
				}
			}
		})
	}
}
