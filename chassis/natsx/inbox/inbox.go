// Package inbox names each NATS user's reply subjects. nats.go puts every
// reply subject under one prefix ("_INBOX" by default); with a prefix per
// user, the server can let each user subscribe to its own replies only, so
// one service cannot read another's. The services' connections (natsx), the
// embedded server's permissions and nats-server.conf all follow this rule.
//
// It is a package of its own, free of dependencies, so the embedded server
// (which natsx's tests use) can share the rule without an import cycle.
package inbox

import (
	"fmt"
	"strings"
)

// Prefix is user's inbox prefix, e.g. "_INBOX_blog" (nats.CustomInboxPrefix).
func Prefix(user string) string { return "_INBOX_" + user }

// Subjects is the subscription pattern of user's replies, e.g. "_INBOX_blog.>".
func Subjects(user string) string { return Prefix(user) + ".>" }

// CheckUser reports a user name that cannot be part of a subject token (an
// empty name, '.', '*', '>' or white space).
func CheckUser(user string) error {
	if user == "" || strings.ContainsAny(user, ".*> \t\r\n") {
		return fmt.Errorf("NATS user %q cannot name an inbox prefix (no '.', '*', '>' or spaces)", user)
	}
	return nil
}
