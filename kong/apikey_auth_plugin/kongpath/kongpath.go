// Package kongpath reproduces how Kong 3.9 reads a request path: the router
// matches routes on a normalised path (kong/tools/uri.lua normalize, after
// RFC 3986 §6.2.2), builds the upstream path from that same normalised form
// and escapes it again before proxying (escape).
//
// Both gateways need it so that the route that is matched, the path that is
// rate-limited and the path the service receives agree: the Kong plugin gets
// the raw path from Kong and normalises it the way Kong's router already did,
// and the local gateway routes on it as Kong does. Without it
// /auth/%73ignin/basic or /%61uth/signin/basic reach sign-in while looking
// like another path.
package kongpath

import "strings"

// reserved are RFC 3986's reserved characters plus "%": Kong never decodes
// them (decoding %2F or %3F would change what the path means), it only
// upper-cases their hex digits.
const reserved = "!*'();:@&=+$,/?%#[]"

// Normalize returns Kong's normalised form of an escaped request path
// (without the query): percent-encoded triplets of every character except
// the reserved ones are decoded (reserved ones are upper-cased), dot
// segments are removed and runs of slashes merged. /auth/%73ignin/basic,
// /auth//signin/basic, /auth/./signin/basic and /x/../auth/signin/basic all
// become /auth/signin/basic.
func Normalize(p string) string {
	if p == "" || p == "/" {
		return p
	}
	if strings.IndexByte(p, '%') >= 0 {
		p = decodeUnreserved(p)
	}
	if !strings.Contains(p, ".") && !strings.Contains(p, "//") {
		return p
	}
	return removeDotSegments(p)
}

// decodeUnreserved decodes every well-formed %XX triplet whose character is
// not reserved and upper-cases the others; malformed ones stay as they are.
func decodeUnreserved(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c, ok := triplet(p, i)
		switch {
		case !ok:
			b.WriteByte(p[i])
			continue
		case strings.IndexByte(reserved, c) >= 0:
			b.WriteString(strings.ToUpper(p[i : i+3]))
		default:
			b.WriteByte(c)
		}
		i += 2
	}
	return b.String()
}

// removeDotSegments is RFC 3986 §5.2.4's algorithm as Kong runs it, with
// empty segments ("//") merged.
func removeDotSegments(in string) string {
	var out []string
	for len(in) > 0 {
		switch {
		case in == "/.":
			in = "/"
		case in == "/..":
			in = "/"
			out = pop(out)
		case in == "." || in == "..":
			in = ""
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			out = pop(out)
		case strings.HasPrefix(in, "//"):
			in = in[1:]
		default:
			// The next segment with its leading slash.
			end := len(in)
			if i := strings.IndexByte(in[1:], '/'); i >= 0 {
				end = i + 1
			}
			out = append(out, in[:end])
			in = in[end:]
		}
	}
	return strings.Join(out, "")
}

func pop(s []string) []string {
	if len(s) > 0 {
		return s[:len(s)-1]
	}
	return s
}

// SanitizePostfix is what Kong's router does to the part of the normalised
// path after a stripped route prefix before appending it to the service's
// path: a leading "./" or "../" (or a postfix that is only "." or "..") is
// dropped. With the prefix /auth, /auth./signin/basic therefore reaches the
// service as /signin/basic: route prefixes that end in "/" avoid that.
func SanitizePostfix(postfix string) string {
	switch {
	case postfix == "." || postfix == "..":
		return ""
	case strings.HasPrefix(postfix, "./"):
		return postfix[2:]
	case strings.HasPrefix(postfix, "../"):
		return postfix[3:]
	}
	return postfix
}

// Escape percent-encodes every byte of a normalised path that may not
// appear in a request line as it is (spaces, controls, non-ASCII bytes,
// quotes...), as Kong does before proxying; reserved characters, unreserved
// ones and "%" stay.
func Escape(p string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(p); i++ {
		if !keep(p[i]) {
			n++
		}
	}
	if n == 0 {
		return p
	}
	b := make([]byte, 0, len(p)+2*n)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if keep(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return string(b)
}

func keep(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&'()*+,/:;=?@[]-_.~%", c) >= 0
}

// Unescape decodes every well-formed %XX triplet, reserved characters
// included, and leaves malformed ones as they are: the most any upstream
// may decode. A rate limit that must not be dodged matches this form too
// (an upstream that decodes %2F routes /auth/signin%2Fbasic to sign-in).
func Unescape(p string) string {
	if strings.IndexByte(p, '%') < 0 {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if c, ok := triplet(p, i); ok {
			b.WriteByte(c)
			i += 2
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// triplet decodes the %XX at p[i], if there is one.
func triplet(p string, i int) (byte, bool) {
	if p[i] != '%' || i+2 >= len(p) {
		return 0, false
	}
	hi, ok1 := unhex(p[i+1])
	lo, ok2 := unhex(p[i+2])
	return hi<<4 | lo, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
