// Package openapi checks HTTP exchanges against a service's OpenAPI 3.1
// document, so that tests can prove the document true: every response a test
// receives is matched to its documented operation and status and its headers
// and body are validated against the schemas.
//
// Requests are matched by method and path. The path may be the service path
// (/signup/basic) or the gateway path (/auth/signup/basic): any path prefix of
// the document's servers (http://localhost:8000/auth → /auth) is stripped when
// the path as given matches nothing. A trailing slash is ignored, like the
// services' router does.
//
// Requests no operation matches are checked against the document's
// `x-unmatched-responses` extension, which names, per status, the component
// response a client gets for an unknown path (`path`, 404 `url not found`) and
// for a wrong method on a documented path (`method`, 405 with `Allow`):
//
//	x-unmatched-responses:
//	  path:   {"404": UrlNotFound, "413": PayloadTooLarge}
//	  method: {"405": MethodNotAllowed}
//
// Besides the schemas, a JSON envelope ({"code":…,"status":…}) must repeat
// the HTTP status in `status` and carry code "10000" exactly on 2xx, and a 405
// must list in `Allow` exactly the methods documented for the path.
package openapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// UnmatchedExtension is the document extension naming the responses to
// requests that match no operation.
const UnmatchedExtension = "x-unmatched-responses"

// ErrUnknownPath: no documented path matches the request.
var ErrUnknownPath = errors.New("openapi: no documented path matches")

// MethodNotAllowedError: the path is documented, the method is not.
type MethodNotAllowedError struct {
	Path    string   // the documented path template
	Allowed []string // its documented methods, sorted
}

func (e *MethodNotAllowedError) Error() string {
	return fmt.Sprintf("openapi: %s documents only %s", e.Path, strings.Join(e.Allowed, ", "))
}

// Match is the documented operation a request maps to.
type Match struct {
	OperationID string
	Method      string // upper case
	Path        string // the documented path template, e.g. /id/{id}
	// Prefix is the server path prefix that was stripped ("/blog"), or "".
	Prefix string
	// PathParams are the values of the template's parameters.
	PathParams map[string]string
}

// Operation describes one documented operation (for coverage reports).
type Operation struct {
	OperationID string
	Method      string
	Path        string
	Statuses    []int // documented response statuses, sorted
}

// Validator validates requests and responses against one document. It is
// safe for concurrent use.
type Validator struct {
	doc      *openapi3.T
	router   routers.Router
	prefixes []string // server base paths other than "/", longest first
	// unmatched responses by kind ("path", "method") and status.
	unmatched map[string]map[int]*openapi3.ResponseRef
	formats   []openapi3.SchemaValidationOption
}

// Load parses and validates an OpenAPI 3.x document (YAML or JSON) and
// prepares it for matching. The document must be self-contained.
func Load(spec []byte) (*Validator, error) {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("openapi: loading document: %w", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		return nil, fmt.Errorf("openapi: document version %q is not OpenAPI 3", doc.OpenAPI)
	}
	v := &Validator{doc: doc, formats: formatOptions()}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("openapi: invalid document: %w", err)
	}
	for _, s := range doc.Servers {
		bp, err := s.BasePath()
		if err != nil {
			return nil, fmt.Errorf("openapi: server %q: %w", s.URL, err)
		}
		if bp = strings.TrimRight(bp, "/"); bp != "" && !slices.Contains(v.prefixes, bp) {
			v.prefixes = append(v.prefixes, bp)
		}
	}
	sort.Slice(v.prefixes, func(i, j int) bool { return len(v.prefixes[i]) > len(v.prefixes[j]) })

	// Route on service paths only: a server-less shallow copy, so that the
	// router does not try to match hosts or prefixes itself.
	bare := *doc
	bare.Servers = nil
	if v.router, err = legacy.NewRouter(&bare); err != nil {
		return nil, fmt.Errorf("openapi: building router: %w", err)
	}
	if v.unmatched, err = unmatchedResponses(doc); err != nil {
		return nil, err
	}
	return v, nil
}

func unmatchedResponses(doc *openapi3.T) (map[string]map[int]*openapi3.ResponseRef, error) {
	out := map[string]map[int]*openapi3.ResponseRef{}
	raw, ok := doc.Extensions[UnmatchedExtension]
	if !ok {
		return out, nil
	}
	kinds, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("openapi: %s must be an object", UnmatchedExtension)
	}
	for kind, v := range kinds {
		if kind != "path" && kind != "method" {
			if kind == "description" {
				continue
			}
			return nil, fmt.Errorf("openapi: %s: unknown key %q (want path, method)", UnmatchedExtension, kind)
		}
		byStatus, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("openapi: %s.%s must be an object", UnmatchedExtension, kind)
		}
		out[kind] = map[int]*openapi3.ResponseRef{}
		for code, name := range byStatus {
			status, err := strconv.Atoi(code)
			if err != nil || status < 100 || status > 599 {
				return nil, fmt.Errorf("openapi: %s.%s: %q is not a status", UnmatchedExtension, kind, code)
			}
			n, _ := name.(string)
			var ref *openapi3.ResponseRef
			if doc.Components != nil {
				ref = doc.Components.Responses[n]
			}
			if ref == nil || ref.Value == nil {
				return nil, fmt.Errorf("openapi: %s.%s.%s: no component response %q", UnmatchedExtension, kind, code, n)
			}
			out[kind][status] = ref
		}
	}
	return out, nil
}

// Operations lists every documented operation, sorted by path then method.
func (v *Validator) Operations() []Operation {
	var ops []Operation
	for path, item := range v.doc.Paths.Map() {
		for method, op := range item.Operations() {
			o := Operation{OperationID: op.OperationID, Method: method, Path: path}
			if op.Responses != nil {
				for code := range op.Responses.Map() {
					if n, err := strconv.Atoi(code); err == nil {
						o.Statuses = append(o.Statuses, n)
					}
				}
			}
			sort.Ints(o.Statuses)
			ops = append(ops, o)
		}
	}
	sort.Slice(ops, func(i, j int) bool {
		if ops[i].Path != ops[j].Path {
			return ops[i].Path < ops[j].Path
		}
		return ops[i].Method < ops[j].Method
	})
	return ops
}

// Handles reports whether the request belongs to this document: its path is
// under one of the servers' path prefixes (/blog/...), or it is a documented
// service path.
func (v *Validator) Handles(req *http.Request) bool {
	p := cleanPath(req.URL.Path)
	for _, prefix := range v.prefixes {
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return true
		}
	}
	_, err := v.Match(req)
	var mna *MethodNotAllowedError
	return err == nil || errors.As(err, &mna)
}

// Match finds the operation for the request. The error is ErrUnknownPath or a
// *MethodNotAllowedError when there is none.
func (v *Validator) Match(req *http.Request) (Match, error) {
	m, _, err := v.match(req)
	return m, err
}

func (v *Validator) match(req *http.Request) (Match, *routers.Route, error) {
	candidates := v.candidatePaths(req.URL.Path)
	method := strings.ToUpper(req.Method)
	for _, c := range candidates {
		if route, params, ok := v.find(method, c.path); ok {
			return Match{
				OperationID: route.Operation.OperationID, Method: method, Path: route.Path,
				Prefix: c.prefix, PathParams: params,
			}, route, nil
		}
	}
	for _, c := range candidates {
		var allowed []string
		var template string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
			http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodTrace} {
			if route, _, ok := v.find(m, c.path); ok {
				allowed = append(allowed, m)
				template = route.Path
			}
		}
		if len(allowed) > 0 {
			sort.Strings(allowed)
			return Match{Method: method, Path: template, Prefix: c.prefix}, nil,
				&MethodNotAllowedError{Path: template, Allowed: allowed}
		}
	}
	return Match{Method: method}, nil, ErrUnknownPath
}

type candidate struct{ path, prefix string }

// candidatePaths: the path as given, then with each server prefix stripped.
func (v *Validator) candidatePaths(raw string) []candidate {
	p := cleanPath(raw)
	out := []candidate{{path: p}}
	for _, prefix := range v.prefixes {
		switch {
		case p == prefix:
			out = append(out, candidate{path: "/", prefix: prefix})
		case strings.HasPrefix(p, prefix+"/"):
			out = append(out, candidate{path: p[len(prefix):], prefix: prefix})
		}
	}
	return out
}

func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if len(p) > 1 {
		if t := strings.TrimRight(p, "/"); t != "" {
			return t
		}
		return "/"
	}
	return p
}

func (v *Validator) find(method, path string) (*routers.Route, map[string]string, bool) {
	r := &http.Request{Method: method, URL: &url.URL{Path: path}}
	route, params, err := v.router.FindRoute(r)
	if err != nil || route == nil {
		return nil, nil, false
	}
	return route, params, true
}

func (v *Validator) options() *openapi3filter.Options {
	return &openapi3filter.Options{
		IncludeResponseStatus:   true,
		AuthenticationFunc:      openapi3filter.NoopAuthenticationFunc,
		SchemaValidationOptions: v.formats,
	}
}

// routedRequest is req with its path replaced by the service path, so that
// the filter sees what the service saw.
func routedRequest(req *http.Request, m Match, body []byte) *http.Request {
	r := req.Clone(context.Background())
	u := *req.URL
	u.Path = strings.TrimPrefix(cleanPath(req.URL.Path), m.Prefix)
	if u.Path == "" {
		u.Path = "/"
	}
	u.RawPath = ""
	r.URL = &u
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	if body == nil {
		r.Body = http.NoBody
	} else if r.Header.Get("Content-Type") == "" {
		// The services decode a body as JSON whatever its Content-Type.
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

// ValidateRequest checks a request (its path and query parameters, headers
// and body) against its operation. body is the request body (nil for none);
// req.Body is not read. Security requirements are not checked: a request
// sent straight to a service needs no x-api-key.
func (v *Validator) ValidateRequest(req *http.Request, body []byte) error {
	m, route, err := v.match(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	input := &openapi3filter.RequestValidationInput{
		Request:    routedRequest(req, m, body),
		PathParams: m.PathParams,
		Route:      route,
		Options:    v.options(),
	}
	if err := openapi3filter.ValidateRequest(context.Background(), input); err != nil {
		return fmt.Errorf("%s %s (%s): request does not match the document: %w", req.Method, req.URL.Path, opName(m), err)
	}
	return nil
}

// ValidateResponse checks a response to req: its status must be documented
// for the operation (or, for an unmatched request, in x-unmatched-responses),
// its documented headers present and valid, its Content-Type documented and
// its body valid against the schema.
func (v *Validator) ValidateResponse(req *http.Request, status int, header http.Header, body []byte) error {
	if header == nil {
		header = http.Header{}
	}
	m, route, err := v.match(req)
	where := fmt.Sprintf("%s %s → %d", req.Method, req.URL.Path, status)
	if err != nil {
		return v.validateUnmatched(where, req, m, err, status, header, body)
	}
	// The filter lets 301/304/307/308 through unchecked; an undocumented
	// redirect is drift like any other status.
	if rs := route.Operation.Responses; rs == nil || rs.Status(status) == nil && rs.Default() == nil {
		return fmt.Errorf("%s (%s): response does not match the document: status is not supported", where, opName(m))
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    routedRequest(req, m, nil),
			PathParams: m.PathParams,
			Route:      route,
			Options:    v.options(),
		},
		Status:  status,
		Header:  header,
		Options: v.options(),
	}
	input.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		return fmt.Errorf("%s (%s): response does not match the document: %w", where, opName(m), err)
	}
	if err := checkEnvelope(status, header, body); err != nil {
		return fmt.Errorf("%s (%s): %w", where, opName(m), err)
	}
	return nil
}

func opName(m Match) string {
	if m.OperationID != "" {
		return m.OperationID
	}
	return m.Method + " " + m.Path
}

func (v *Validator) validateUnmatched(where string, req *http.Request, m Match, matchErr error, status int, header http.Header, body []byte) error {
	kind := "path"
	var mna *MethodNotAllowedError
	if errors.As(matchErr, &mna) {
		kind = "method"
	}
	ref := v.unmatched[kind][status]
	if ref == nil {
		return fmt.Errorf("%s: %v, and %d is not among the documented answers to that (%s.%s)",
			where, matchErr, status, UnmatchedExtension, kind)
	}
	if err := v.validateAgainst(ref.Value, req, status, header, body); err != nil {
		return fmt.Errorf("%s (%v): response does not match the document: %w", where, matchErr, err)
	}
	if mna != nil && status == http.StatusMethodNotAllowed {
		got := splitAllow(header.Values("Allow"))
		if !slices.Equal(got, mna.Allowed) {
			return fmt.Errorf("%s: Allow lists %v, the document %v for %s", where, got, mna.Allowed, mna.Path)
		}
	}
	if err := checkEnvelope(status, header, body); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return nil
}

// validateAgainst runs the filter's response validation against one response
// object, through a synthetic operation that documents only it.
func (v *Validator) validateAgainst(resp *openapi3.Response, req *http.Request, status int, header http.Header, body []byte) error {
	op := &openapi3.Operation{Responses: openapi3.NewResponses()}
	op.Responses.Set(strconv.Itoa(status), &openapi3.ResponseRef{Value: resp})
	route := &routers.Route{Spec: v.doc, Path: req.URL.Path, Method: req.Method, Operation: op, PathItem: &openapi3.PathItem{}}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: routedRequest(req, Match{}, nil), Route: route, Options: v.options(),
		},
		Status: status, Header: header, Options: v.options(),
	}
	input.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(context.Background(), input)
}

func splitAllow(values []string) []string {
	var out []string
	for _, v := range values {
		for _, m := range strings.Split(v, ",") {
			if m = strings.ToUpper(strings.TrimSpace(m)); m != "" && !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	sort.Strings(out)
	return out
}

// checkEnvelope: a JSON object body carrying "code" and a numeric "status"
// is the platform envelope; status must equal the HTTP status and code be
// "10000" exactly for 2xx.
func checkEnvelope(status int, header http.Header, body []byte) error {
	ct := strings.ToLower(header.Get("Content-Type"))
	if !strings.HasPrefix(ct, "application/json") {
		return nil
	}
	var env struct {
		Code   *string          `json:"code"`
		Status *json.RawMessage `json:"status"`
	}
	if json.Unmarshal(body, &env) != nil || env.Code == nil || env.Status == nil {
		return nil
	}
	n, err := strconv.Atoi(string(*env.Status))
	if err != nil {
		return fmt.Errorf("envelope status %s is not an integer", *env.Status)
	}
	if n != status {
		return fmt.Errorf("envelope status %d differs from the HTTP status %d", n, status)
	}
	want := "10001"
	if status >= 200 && status < 300 {
		want = "10000"
	}
	if *env.Code != want {
		return fmt.Errorf("envelope code %q on HTTP %d, want %q", *env.Code, status, want)
	}
	return nil
}

// Format checks for the formats the documents use, close to the services'
// own validator: `email` and `uri` (absolute, with a scheme) like
// go-playground's email and url, `uri-reference` like its uri.
func formatOptions() []openapi3.SchemaValidationOption {
	return []openapi3.SchemaValidationOption{
		openapi3.WithStringFormatValidators(map[string]openapi3.StringFormatValidator{
			"email":         openapi3.NewCallbackValidator(validateEmail),
			"uri":           openapi3.NewCallbackValidator(validateURI),
			"uri-reference": openapi3.NewCallbackValidator(validateURIReference),
			"date-time":     openapi3.NewCallbackValidator(validateDateTime),
		}),
	}
}

var (
	emailRE    = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	dateTimeRE = regexp.MustCompile(openapi3.FormatOfStringDateTime)
)

func validateEmail(s string) error {
	if !emailRE.MatchString(s) {
		return errors.New("not an email address")
	}
	return nil
}

func validateURI(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return errors.New("not an absolute URI")
	}
	return nil
}

func validateURIReference(s string) error {
	if s == "" {
		return errors.New("empty URI reference")
	}
	if _, err := url.Parse(s); err != nil {
		return errors.New("not a URI reference")
	}
	return nil
}

func validateDateTime(s string) error {
	if !dateTimeRE.MatchString(s) {
		return errors.New("not an RFC 3339 date-time")
	}
	return nil
}
