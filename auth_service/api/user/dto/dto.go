// Package dto holds the user payloads of the HTTP API (sign-up and sign-in
// users, /profile/mine and /profile/id/:id).
package dto

import "encoding/json"

// InfoRole is a role as clients see it.
type InfoRole struct {
	ID   string `json:"_id"`
	Code string `json:"code"`
}

// InfoPrivateUser is the signed-in user's own view (profile/mine, and the
// user of sign-up and sign-in). It is also the snapshot cached per user, so
// one shape serves every endpoint.
type InfoPrivateUser struct {
	ID            string     `json:"_id"`
	Email         string     `json:"email"`
	Name          string     `json:"name"`
	ProfilePicURL *string    `json:"profilePicUrl,omitempty"`
	Roles         []InfoRole `json:"roles"`

	// encoded is the JSON of the fields above, computed once by Freeze for
	// a snapshot shared by many requests (nil: not computed).
	encoded []byte
}

// Freeze encodes u once, for a snapshot that is about to be shared by
// concurrent requests and never modified again, and returns u.
func (u *InfoPrivateUser) Freeze() *InfoPrivateUser {
	if b, err := json.Marshal(u); err == nil {
		u.encoded = b
	}
	return u
}

// JSON is u's encoding when Freeze computed it, else nil.
func (u *InfoPrivateUser) JSON() []byte { return u.encoded }

// InfoPublicUser is what anyone may see of a user.
type InfoPublicUser struct {
	ID            string  `json:"_id"`
	Name          string  `json:"name"`
	ProfilePicURL *string `json:"profilePicUrl,omitempty"`
}

// HasAnyRole reports whether the user holds one of codes (case-sensitive,
// like the reference).
func (u *InfoPrivateUser) HasAnyRole(codes []string) bool {
	for _, r := range u.Roles {
		for _, c := range codes {
			if r.Code == c {
				return true
			}
		}
	}
	return false
}

// Public is the public view of the user.
func (u *InfoPrivateUser) Public() InfoPublicUser {
	return InfoPublicUser{ID: u.ID, Name: u.Name, ProfilePicURL: u.ProfilePicURL}
}

// MongoID is the `:id` path parameter: 24 hex characters.
type MongoID struct {
	ID string `uri:"id" binding:"required" validate:"required,len=24,objectid"`
}
