package mongox

// IsObjectIDHex reports whether s is the hexadecimal form of a document id:
// 24 hexadecimal characters, either case. Every layer that accepts an id from
// outside (HTTP paths, NATS payloads, token subjects) checks it with this one
// rule before the store parses it.
func IsObjectIDHex(s string) bool {
	if len(s) != 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
