package e2e

import (
	"net/http"
	"sync"
	"testing"

	authopenapi "blogplatform/auth_service/openapi"
	blogopenapi "blogplatform/blog_service/openapi"
	"blogplatform/devkit/envelope"
	"blogplatform/devkit/openapi"
)

// specs validates every response the journey receives against the service's
// OpenAPI document, so the documents cannot drift from what the platform
// really answers.
var specs = sync.OnceValues(func() ([]*openapi.Validator, error) {
	auth, err := openapi.Load(authopenapi.Spec)
	if err != nil {
		return nil, err
	}
	blog, err := openapi.Load(blogopenapi.Spec)
	if err != nil {
		return nil, err
	}
	return []*openapi.Validator{auth, blog}, nil
})

// validateAgainstSpec checks r against the document its gateway prefix
// (/auth or /blog) selects. The gateway's own Kong-style bodies (no route
// matched) are not the services' and are left out.
func validateAgainstSpec(t *testing.T, r reply) {
	t.Helper()
	validators, err := specs()
	if err != nil {
		t.Fatalf("loading the OpenAPI documents: %v", err)
	}
	if env, err := envelope.Decode(r.raw); err == nil && env.Code == "" && env.Message != "" {
		return
	}
	req, err := http.NewRequest(r.method, r.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range validators {
		if !v.Handles(req) {
			continue
		}
		if err := v.ValidateResponse(req, r.status, r.header, r.raw); err != nil {
			t.Errorf("%v: does not match the OpenAPI document: %v", r, err)
		}
		return
	}
}
