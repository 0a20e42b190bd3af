// Package model holds the user domain: users, roles, their codes, the one
// normal form of an email, and the failures the user store reports. The
// struct tags name the stored fields, which the reference's documents share;
// which collections hold them, and how they are queried and indexed, is the
// store's business alone (package store).
package model

import (
	"errors"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

var (
	// ErrNotFound: no active user (or role) matches.
	ErrNotFound = errors.New("not found")
	// ErrDuplicateEmail: another account already holds the email.
	ErrDuplicateEmail = errors.New("email already registered")
)

// Role codes (the reference's rolecode enum).
const (
	RoleLearner = "LEARNER"
	RoleAuthor  = "AUTHOR"
	RoleEditor  = "EDITOR"
	RoleAdmin   = "ADMIN"
)

// AllRoles are the codes the bootstrap ensures, in the reference's order.
var AllRoles = []string{RoleLearner, RoleAuthor, RoleEditor, RoleAdmin}

// NormalizeEmail is the one form an email is stored and looked up in:
// surrounding spaces removed and lower case, so "Ada@Example.com " and
// "ada@example.com" are one account. (The local part is case-sensitive in
// theory; no mail provider in use treats it so, and two accounts differing
// only by case are a trap for their owners.)
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

type User struct {
	ID            bson.ObjectID   `bson:"_id,omitempty"`
	Name          string          `bson:"name"`
	Email         string          `bson:"email"`
	Password      string          `bson:"password,omitempty"`
	ProfilePicURL *string         `bson:"profilePicUrl,omitempty"`
	Roles         []bson.ObjectID `bson:"roles,omitempty"`
	Verified      bool            `bson:"verified"`
	Status        bool            `bson:"status"`
	CreatedAt     time.Time       `bson:"createdAt"`
	UpdatedAt     time.Time       `bson:"updatedAt"`
}

type Role struct {
	ID        bson.ObjectID `bson:"_id,omitempty"`
	Code      string        `bson:"code"`
	Status    bool          `bson:"status"`
	CreatedAt time.Time     `bson:"createdAt"`
	UpdatedAt time.Time     `bson:"updatedAt"`
}

// EmailConflict is a set of stored accounts whose emails differ only by
// letter case or surrounding spaces. Normalising them would make one address
// name several accounts, and choosing one would hand its owner's account to
// whoever owns the other, so they are reported and left for an operator.
type EmailConflict struct {
	Email   string          `bson:"_id"` // the normalised address
	UserIDs []bson.ObjectID `bson:"users"`
	Stored  []string        `bson:"emails"` // the emails as stored
	SeenAt  time.Time       `bson:"seenAt"`
}
