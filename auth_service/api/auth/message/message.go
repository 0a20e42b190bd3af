// Package message holds the NATS payloads of auth.authentication,
// auth.authorization and auth.authenticate.authorize. The wire shapes are
// chassis/authwire's; the types here add validation, so a malformed request
// gets a 400 reply instead of the reference's crash.
package message

import (
	"blogplatform/chassis/apperr"
	"blogplatform/chassis/authwire"
	"blogplatform/chassis/mongox"
)

// AuthenticationRequest is {"value":"<Authorization header>"} (authwire.Text).
// An empty value is a valid request (the caller had no header) answered with
// a 401; a missing value is a malformed message.
type AuthenticationRequest struct {
	Value *string `json:"value"`
}

// Validate requires the value field.
func (r *AuthenticationRequest) Validate() error {
	if r.Value == nil {
		return apperr.BadRequest("value is required")
	}
	return nil
}

// AuthenticateAuthorizeRequest is {"value":"<Authorization header>","roles":[...]}
// (authwire.AuthenticateAuthorizeRequest). The value follows
// AuthenticationRequest's rule (its Validate is the one promoted here); the
// roles follow AuthorizationRequest's (empty is a 403, not a 400).
type AuthenticateAuthorizeRequest struct {
	AuthenticationRequest
	Roles []string `json:"roles"`
}

// AuthorizationRequest is {"user":{...},"roles":[...]}; only user._id is used.
type AuthorizationRequest authwire.AuthorizationRequest

// Validate requires the user and a hex id; an empty role list is not a
// malformed message but a 403 (`permission denied: role missing`).
func (r *AuthorizationRequest) Validate() error {
	if r.User == nil {
		return apperr.BadRequest("user is required")
	}
	if !mongox.IsObjectIDHex(r.User.ID) {
		return apperr.BadRequest("user._id must be a valid id")
	}
	return nil
}
