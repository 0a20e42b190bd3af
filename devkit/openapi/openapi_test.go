package openapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

const testSpec = `
openapi: 3.1.0
info: {title: test, version: 1.0.0}
servers:
  - url: http://localhost:8000/svc
  - url: http://{host}:8080
    variables: {host: {default: svc}}
x-unmatched-responses:
  path: {'404': UrlNotFound}
  method: {'405': MethodNotAllowed}
paths:
  /items/{id}:
    parameters:
      - {name: id, in: path, required: true, schema: {type: string, pattern: '^[0-9a-f]{4}$'}}
    get:
      operationId: getItem
      responses:
        '200':
          description: ok
          headers: {X-Request-ID: {$ref: '#/components/headers/X-Request-ID'}}
          content:
            application/json:
              schema:
                type: object
                required: [code, status, message, data]
                additionalProperties: false
                properties:
                  code: {const: '10000'}
                  status: {const: 200}
                  message: {const: success}
                  data:
                    type: object
                    required: [_id, name]
                    additionalProperties: false
                    properties:
                      _id: {type: string}
                      name: {type: string}
                      picture: {type: [string, 'null'], format: uri}
        '404': {$ref: '#/components/responses/Failure'}
    delete:
      operationId: deleteItem
      responses:
        '200': {$ref: '#/components/responses/Loose'}
  /items:
    post:
      operationId: createItem
      parameters:
        - {name: dry, in: query, schema: {type: integer, minimum: 0, maximum: 1}}
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [name]
              additionalProperties: false
              properties:
                name: {type: string, minLength: 2}
                email: {type: string, format: email}
      responses:
        '200': {$ref: '#/components/responses/Loose'}
        '400': {$ref: '#/components/responses/Failure'}
components:
  headers:
    X-Request-ID: {required: true, schema: {type: string, minLength: 1}}
  responses:
    Failure:
      description: failure
      headers: {X-Request-ID: {$ref: '#/components/headers/X-Request-ID'}}
      content:
        application/json:
          schema: {$ref: '#/components/schemas/Error'}
    Loose:
      description: any envelope (only the envelope consistency check applies)
      content:
        application/json:
          schema: {type: object}
    UrlNotFound:
      description: unknown path
      headers: {X-Request-ID: {$ref: '#/components/headers/X-Request-ID'}}
      content:
        application/json:
          schema:
            allOf:
              - $ref: '#/components/schemas/Error'
              - properties: {message: {const: url not found}}
    MethodNotAllowed:
      description: wrong method
      headers:
        X-Request-ID: {$ref: '#/components/headers/X-Request-ID'}
        Allow: {required: true, schema: {type: string}}
      content:
        application/json:
          schema: {$ref: '#/components/schemas/Error'}
  schemas:
    Error:
      type: object
      required: [code, status, message]
      additionalProperties: false
      properties:
        code: {const: '10001'}
        status: {type: integer}
        message: {type: string}
`

func load(t *testing.T) *Validator {
	t.Helper()
	v, err := Load([]byte(testSpec))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func hdr(kv ...string) http.Header {
	h := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "X-Request-Id": {"abc"}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			h.Del(kv[i])
		} else {
			h.Set(kv[i], kv[i+1])
		}
	}
	return h
}

func TestLoadRejectsBadDocuments(t *testing.T) {
	for name, spec := range map[string]string{
		"not yaml":           "openapi: [",
		"dangling ref":       "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get: {responses: {'200': {$ref: '#/components/responses/Nope'}}}\n",
		"unknown version":    "openapi: 7.0.0\ninfo: {title: t, version: '1'}\npaths: {}\n",
		"dangling unmatched": strings.Replace(testSpec, "path: {'404': UrlNotFound}", "path: {'404': Nope}", 1),
		"bad unmatched key":  strings.Replace(testSpec, "path: {'404': UrlNotFound}", "paths: {'404': UrlNotFound}", 1),
	} {
		if _, err := Load([]byte(spec)); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

func TestMatch(t *testing.T) {
	v := load(t)
	for _, c := range []struct {
		method, target, op, prefix string
	}{
		{"GET", "/items/00ff", "getItem", ""},
		{"GET", "/svc/items/00ff", "getItem", "/svc"},
		{"GET", "http://svc:8080/items/00ff/", "getItem", ""},
		{"DELETE", "/svc/items/zz", "deleteItem", "/svc"}, // matching ignores parameter schemas
		{"POST", "/svc/items/?dry=1", "createItem", "/svc"},
	} {
		m, err := v.Match(httptest.NewRequest(c.method, c.target, nil))
		if err != nil || m.OperationID != c.op || m.Prefix != c.prefix {
			t.Errorf("%s %s: %+v, %v; want %s with prefix %q", c.method, c.target, m, err, c.op, c.prefix)
		}
	}
	_, err := v.Match(httptest.NewRequest("PUT", "/svc/items/00ff", nil))
	var mna *MethodNotAllowedError
	if !errors.As(err, &mna) || strings.Join(mna.Allowed, ",") != "DELETE,GET" || mna.Path != "/items/{id}" {
		t.Errorf("PUT: %v", err)
	}
	if _, err := v.Match(httptest.NewRequest("GET", "/svc/nothing", nil)); !errors.Is(err, ErrUnknownPath) {
		t.Errorf("unknown path: %v", err)
	}
	if _, err := v.Match(httptest.NewRequest("GET", "/svcitems/00ff", nil)); !errors.Is(err, ErrUnknownPath) {
		t.Errorf("a prefix is stripped only at a segment boundary: %v", err)
	}
	if !v.Handles(httptest.NewRequest("GET", "/svc/anything", nil)) || !v.Handles(httptest.NewRequest("GET", "/items/1", nil)) ||
		v.Handles(httptest.NewRequest("GET", "/other/items/1", nil)) {
		t.Error("Handles")
	}
	ops := v.Operations()
	if len(ops) != 3 || ops[0].OperationID != "createItem" || ops[2].OperationID != "getItem" ||
		len(ops[2].Statuses) != 2 || ops[2].Statuses[0] != 200 || ops[2].Statuses[1] != 404 {
		t.Errorf("Operations: %+v", ops)
	}
}

func TestValidateResponse(t *testing.T) {
	v := load(t)
	item := `{"code":"10000","status":200,"message":"success","data":{"_id":"00ff","name":"n"}}`
	for _, c := range []struct {
		name, method, target string
		status               int
		header               http.Header
		body, wantErr        string
	}{
		{"ok", "GET", "/svc/items/00ff", 200, hdr(), item, ""},
		{"ok null picture", "GET", "/items/00ff", 200, hdr(), strings.Replace(item, `"n"}`, `"n","picture":null}`, 1), ""},
		{"ok not found", "GET", "/items/00ff", 404, hdr(), `{"code":"10001","status":404,"message":"item not found"}`, ""},
		{"extra field", "GET", "/items/00ff", 200, hdr(), strings.Replace(item, `"n"}`, `"n","secret":1}`, 1), "doesn't match schema"},
		{"wrong type", "GET", "/items/00ff", 200, hdr(), strings.Replace(item, `"n"}`, `7}`, 1), "doesn't match schema"},
		{"missing code", "GET", "/items/00ff", 404, hdr(), `{"status":404,"message":"x"}`, "doesn't match schema"},
		{"bad format", "GET", "/items/00ff", 200, hdr(), strings.Replace(item, `"n"}`, `"n","picture":"nope"}`, 1), "doesn't match schema"},
		{"undocumented status", "GET", "/items/00ff", 500, hdr(), `{"code":"10001","status":500,"message":"x"}`, "status is not supported"},
		{"undocumented redirect", "GET", "/items/00ff", 307, hdr(), ``, "status is not supported"},
		{"missing header", "GET", "/items/00ff", 200, hdr("X-Request-Id", ""), item, `"X-Request-ID" missing`},
		{"wrong content type", "GET", "/items/00ff", 200, hdr("Content-Type", "text/html"), item, "Content-Type"},
		{"not JSON", "GET", "/items/00ff", 200, hdr(), `{"code":`, "failed to decode"},
		{"loose ok", "DELETE", "/items/00ff", 200, hdr(), `{"code":"10000","status":200,"message":"deleted"}`, ""},
		{"loose status mismatch", "DELETE", "/items/00ff", 200, hdr(), `{"code":"10000","status":201,"message":"x"}`, "differs from the HTTP status"},
		{"loose code mismatch", "DELETE", "/items/00ff", 200, hdr(), `{"code":"10001","status":200,"message":"x"}`, `envelope code "10001"`},
		{"loose status type", "DELETE", "/items/00ff", 200, hdr(), `{"code":"10000","status":"200","message":"x"}`, "not an integer"},
		{"unknown path", "GET", "/svc/nope", 404, hdr(), `{"code":"10001","status":404,"message":"url not found"}`, ""},
		{"unknown path wrong message", "GET", "/svc/nope", 404, hdr(), `{"code":"10001","status":404,"message":"not found"}`, "doesn't match schema"},
		{"unknown path other status", "GET", "/svc/nope", 200, hdr(), item, "not among the documented answers"},
		{"wrong method", "PUT", "/svc/items/00ff", 405, hdr("Allow", "GET, DELETE"), `{"code":"10001","status":405,"message":"method not allowed"}`, ""},
		{"wrong method, Allow differs", "PUT", "/svc/items/00ff", 405, hdr("Allow", "GET"), `{"code":"10001","status":405,"message":"method not allowed"}`, "Allow lists [GET]"},
		{"wrong method, no Allow", "PUT", "/svc/items/00ff", 405, hdr(), `{"code":"10001","status":405,"message":"method not allowed"}`, `"Allow" missing`},
		{"wrong method answered 404", "PUT", "/svc/items/00ff", 404, hdr(), `{"code":"10001","status":404,"message":"url not found"}`, "not among the documented answers"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := v.ValidateResponse(httptest.NewRequest(c.method, c.target, nil), c.status, c.header, []byte(c.body))
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case c.wantErr != "" && err == nil:
				t.Fatal("accepted")
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("want %q in: %v", c.wantErr, err)
			}
		})
	}
}

func TestValidateRequest(t *testing.T) {
	v := load(t)
	for _, c := range []struct {
		method, target, body string
		ok                   bool
	}{
		{"POST", "/svc/items", `{"name":"ab","email":"a@b.co"}`, true},
		{"POST", "/svc/items?dry=1", `{"name":"ab"}`, true},
		{"POST", "/svc/items?dry=2", `{"name":"ab"}`, false},
		{"POST", "/svc/items", `{"name":"a"}`, false},
		{"POST", "/svc/items", `{"name":"ab","email":"nope"}`, false},
		{"POST", "/svc/items", `{"name":"ab","x":1}`, false},
		{"POST", "/svc/items", ``, false},
		{"GET", "/svc/items/00ff", ``, true},
		{"GET", "/svc/items/zz", ``, false},
		{"GET", "/svc/nope", ``, false},
	} {
		req := httptest.NewRequest(c.method, c.target, strings.NewReader("ignored"))
		req.Header.Set("Content-Type", "application/json")
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		err := v.ValidateRequest(req, body)
		if (err == nil) != c.ok {
			t.Errorf("%s %s %s: ok=%v, err=%v", c.method, c.target, c.body, c.ok, err)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	v := load(t)
	item := `{"code":"10000","status":200,"message":"success","data":{"_id":"00ff","name":"n"}}`
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				if err := v.ValidateResponse(httptest.NewRequest("GET", "/svc/items/00ff", nil), 200, hdr(), []byte(item)); err != nil {
					t.Error(err)
				}
				if err := v.ValidateRequest(httptest.NewRequest("POST", "/items", nil), []byte(`{"name":"ab"}`)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}
