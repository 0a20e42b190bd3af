package gateway

import (
	"net/http"
	"net/url"
	"strings"

	"blogplatform/kong/apikey_auth_plugin/kongpath"
)

// upstreamPath computes the path Kong sends upstream for a request path
// reqPath that matched route prefix prefix, following Kong's router
// (kong/router/utils.lua, get_upstream_uri_v0 and _v1). servicePath is the
// service URL's path ("" means "/"). reqPath is the normalised request path
// (kongpath.Normalize); a "./" or "../" left at the start of what follows a
// stripped prefix is dropped, as Kong does. The caller escapes the result
// (kongpath.Escape).
//
// path_handling v0 (Kong's default for these files) joins the service path and
// what is left of the request path with exactly one slash, and an empty
// remainder keeps the service path as it is, so route /auth/signin/basic on
// service http://auth_upstream/signin/basic sends /auth/signin/basic upstream
// as /signin/basic. v1 concatenates literally.
func upstreamPath(servicePath, prefix, reqPath string, strip bool, handling string) string {
	base := servicePath
	if base == "" {
		base = "/"
	}
	postfix := ""
	if strip {
		postfix = kongpath.SanitizePostfix(reqPath[len(prefix):])
	}
	if handling == "v1" {
		return upstreamPathV1(base, postfix, reqPath, strip)
	}
	if strings.HasSuffix(base, "/") {
		if !strip {
			return base + reqPath[1:]
		}
		switch {
		case postfix == "":
			if base == "/" {
				return "/"
			}
			if strings.HasSuffix(reqPath, "/") {
				return base
			}
			return base[:len(base)-1]
		case postfix[0] == '/':
			return base[:len(base)-1] + postfix
		default:
			return base + postfix
		}
	}
	if !strip {
		if reqPath == "/" {
			return base
		}
		return base + reqPath
	}
	switch {
	case postfix == "":
		if len(reqPath) > 1 && strings.HasSuffix(reqPath, "/") {
			return base + "/"
		}
		return base
	case postfix[0] == '/':
		return base + postfix
	default:
		return base + "/" + postfix
	}
}

func upstreamPathV1(base, postfix, reqPath string, strip bool) string {
	if !strip {
		if base == "/" {
			return reqPath
		}
		return base + reqPath
	}
	switch {
	case postfix == "":
		return base
	case base == "/" && postfix[0] == '/':
		return postfix
	case base == "/":
		return "/" + postfix
	default:
		return base + postfix
	}
}

// escapedPath returns the request's path in escaped form, the form prefixes
// are stripped from, so that an encoded slash (%2F) in an id stays encoded.
func escapedPath(r *http.Request) string {
	p := r.URL.EscapedPath()
	if p == "" {
		return "/"
	}
	return p
}

// setPath sets u's path from its escaped form.
func setPath(u *url.URL, escaped string) {
	decoded, err := url.PathUnescape(escaped)
	if err != nil {
		// The escaped form came from a parsed URL, so it unescapes; keep the
		// raw form as the path if it somehow does not.
		decoded = escaped
	}
	u.Path = decoded
	u.RawPath = ""
	if decoded != escaped {
		u.RawPath = escaped
	}
}
