// Package apperr is the one application error type shared by both services:
// a small set of codes, one map from code to HTTP status, and the
// "<status>:<message>" text form used on the NATS wire.
package apperr

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Code classifies an error by what the caller can do about it.
type Code string

const (
	Invalid          Code = "invalid"            // 400: the request is wrong
	Unauthenticated  Code = "unauthenticated"    // 401
	Forbidden        Code = "forbidden"          // 403
	NotFound         Code = "not_found"          // 404
	MethodNotAllowed Code = "method_not_allowed" // 405
	Conflict         Code = "conflict"           // 409: the resource's current state refuses the change; look again
	TooLarge         Code = "too_large"          // 413
	TooManyRequests  Code = "too_many_requests"  // 429
	Internal         Code = "internal"           // 500
	Unavailable      Code = "unavailable"        // 503: a dependency cannot answer
)

var statusOf = map[Code]int{
	Invalid:          http.StatusBadRequest,
	Unauthenticated:  http.StatusUnauthorized,
	Forbidden:        http.StatusForbidden,
	NotFound:         http.StatusNotFound,
	MethodNotAllowed: http.StatusMethodNotAllowed,
	Conflict:         http.StatusConflict,
	TooLarge:         http.StatusRequestEntityTooLarge,
	TooManyRequests:  http.StatusTooManyRequests,
	Internal:         http.StatusInternalServerError,
	Unavailable:      http.StatusServiceUnavailable,
}

// GenericMessage is the only text a 5xx without a specific safe message shows.
const GenericMessage = "something went wrong"

// Error carries a client-safe message; Err holds the internal cause, which is
// logged but never sent.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP status of the error's code.
func (e *Error) Status() int { return StatusOf(e.Code) }

// StatusOf maps a code to its HTTP status; unknown codes are 500.
func StatusOf(c Code) int {
	if s, ok := statusOf[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// CodeOf maps an HTTP status back to a code (used for errors from the wire).
func CodeOf(status int) Code {
	for c, s := range statusOf {
		if s == status {
			return c
		}
	}
	if status >= 500 {
		return Internal
	}
	return Invalid
}

func New(code Code, message string) *Error { return &Error{Code: code, Message: message} }

func Wrap(code Code, message string, err error) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

func BadRequest(msg string) *Error   { return New(Invalid, msg) }
func Unauthorized(msg string) *Error { return New(Unauthenticated, msg) }
func Denied(msg string) *Error       { return New(Forbidden, msg) }
func Missing(msg string) *Error      { return New(NotFound, msg) }

// InternalErr hides err behind the generic message.
func InternalErr(err error) *Error { return Wrap(Internal, GenericMessage, err) }

// From returns the application error inside err, or an internal error that
// hides err's text. A nil err gives nil.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return InternalErr(err)
}

// Public returns the status and message safe to show a client: 5xx errors
// carry only their specific safe message (never a wrapped cause's text).
func Public(err error) (int, string) {
	e := From(err)
	status := e.Status()
	msg := e.Message
	if msg == "" {
		msg = GenericMessage
	}
	return status, msg
}

// WireText is the "<status>:<message>" form the NATS envelope carries.
func WireText(err error) string {
	status, msg := Public(err)
	return strconv.Itoa(status) + ":" + msg
}

// ParseWire turns "<status>:<message>" back into an Error. Text without a
// numeric status prefix (as the reference sends for raw driver errors) is
// reported with ok=false so the caller can decide how to treat it.
func ParseWire(text string) (*Error, bool) {
	prefix, msg, found := strings.Cut(text, ":")
	if !found {
		return nil, false
	}
	status, err := strconv.Atoi(prefix)
	if err != nil || status < 100 || status > 599 {
		return nil, false
	}
	return New(CodeOf(status), msg), true
}
