package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/go-playground/validator/v10"

	"blogplatform/chassis/apperr"
	"blogplatform/chassis/mongox"
)

// Style holds a DTO's message templates. %[1]s is the field name and %[2]s the
// tag's parameter; an empty template reads "<field> is invalid". The wording
// belongs to the service that owns the DTO: a DTO picks its style by
// implementing Styled, and one that does not gets DefaultStyle.
type Style struct {
	Required, Min, Max, Len, Email, URL, URI, Uppercase, ObjectID, Default string
}

// DefaultStyle is the wording of a DTO that chooses none ("must be at least 6
// characters"). Services derive their own styles from it and change only the
// templates whose wording differs.
func DefaultStyle() Style {
	return Style{
		Required:  "%[1]s is required",
		Min:       "%[1]s must be at least %[2]s characters",
		Max:       "%[1]s must be at most %[2]s characters",
		Len:       "%[1]s must be of length %[2]s",
		Email:     "%[1]s is not a valid email",
		URL:       "%[1]s is not a valid URL",
		URI:       "%[1]s is not a valid URI",
		Uppercase: "%[1]s must be uppercase",
		ObjectID:  "%[1]s must be a valid id",
		Default:   "%[1]s is invalid",
	}
}

// Styled lets a DTO choose its message templates; DefaultStyle otherwise.
type Styled interface{ ValidationStyle() Style }

// Validators for the two stages. They are immutable after construction and
// hold only reflection caches, so sharing them between replicas is safe.
var (
	validatorsOnce sync.Once
	stage1, stage2 *validator.Validate
)

func validators() (*validator.Validate, *validator.Validate) {
	validatorsOnce.Do(func() {
		stage1 = newValidator("binding")
		stage2 = newValidator("validate")
	})
	return stage1, stage2
}

func newValidator(tag string) *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.SetTagName(tag)
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		for _, t := range []string{"json", "form", "uri"} {
			if name, _, _ := strings.Cut(f.Tag.Get(t), ","); name != "" && name != "-" {
				return name
			}
		}
		return f.Name
	})
	// objectid: 24 hexadecimal characters (checked after len=24 so that the
	// length message keeps priority).
	_ = v.RegisterValidation("objectid", func(fl validator.FieldLevel) bool {
		return mongox.IsObjectIDHex(fl.Field().String())
	})
	return v
}

// Validate runs stage 1 (`binding` tags) and, only when it passes, stage 2
// (`validate` tags), like the reference; the result is a 400 with one message
// per failed field in field order, joined by ", ".
func Validate(dst any) error {
	s1, s2 := validators()
	style := DefaultStyle()
	if st, ok := dst.(Styled); ok {
		style = st.ValidationStyle()
	}
	for _, v := range []*validator.Validate{s1, s2} {
		if err := v.Struct(dst); err != nil {
			var verrs validator.ValidationErrors
			if errors.As(err, &verrs) {
				msgs := make([]string, 0, len(verrs))
				for _, fe := range verrs {
					msgs = append(msgs, fieldMessage(style, fe))
				}
				return apperr.BadRequest(strings.Join(msgs, ", "))
			}
			return apperr.BadRequest("request is invalid")
		}
	}
	return nil
}

func fieldMessage(st Style, fe validator.FieldError) string {
	format := st.Default
	switch fe.Tag() {
	case "required":
		format = st.Required
	case "min":
		format = st.Min
	case "max":
		format = st.Max
	case "len":
		format = st.Len
	case "email":
		format = st.Email
	case "url", "http_url":
		format = st.URL
	case "uri":
		format = st.URI
	case "uppercase":
		format = st.Uppercase
	case "objectid":
		format = st.ObjectID
	}
	if format == "" {
		format = "%[1]s is invalid"
	}
	return fmt.Sprintf(format, fe.Field(), fe.Param())
}

// ErrEmptyBody keeps the reference's message for a missing body.
const emptyBodyMessage = "EOF"

// BindJSON decodes the body into dst strictly (unknown fields are rejected, so
// a typo or an injected key never passes silently) and validates it.
func BindJSON(c *gin.Context, dst any) error {
	if c.Request.Body == nil {
		return apperr.BadRequest(emptyBodyMessage)
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return apperr.New(apperr.TooLarge, "request body too large")
		}
		return apperr.BadRequest("request body could not be read")
	}
	if err := DecodeJSON(body, dst); err != nil {
		return err
	}
	return Validate(dst)
}

// DecodeJSON is the strict decoder behind BindJSON, shared with the fuzz tests.
func DecodeJSON(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return apperr.BadRequest(emptyBodyMessage)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return apperr.BadRequest("malformed JSON: unexpected data after the JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return apperr.BadRequest("malformed JSON: unexpected data after the JSON value")
	}
	return nil
}

func jsonError(err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		return apperr.BadRequest(fmt.Sprintf("malformed JSON: %s (at offset %d)", syntaxErr.Error(), syntaxErr.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.BadRequest("malformed JSON: unexpected end of input")
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return apperr.BadRequest(fmt.Sprintf("request body must be a JSON object, not %s", typeErr.Value))
		}
		return apperr.BadRequest(fmt.Sprintf("%s must be of type %s", jsonFieldPath(field), jsonTypeName(typeErr.Type)))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return apperr.BadRequest("unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field "))
	case errors.Is(err, io.EOF):
		return apperr.BadRequest(emptyBodyMessage)
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return apperr.New(apperr.TooLarge, "request body too large")
	}
	// Remaining decoder errors come from field types' own UnmarshalJSON; they
	// describe the client's input, not our internals.
	return apperr.BadRequest("malformed JSON: " + strings.TrimPrefix(err.Error(), "json: "))
}

// jsonFieldPath turns the decoder's "tags.0" into "tags[0]".
func jsonFieldPath(field string) string {
	parts := strings.Split(field, ".")
	var b strings.Builder
	for i, p := range parts {
		if _, err := strconv.Atoi(p); err == nil && i > 0 {
			b.WriteString("[" + p + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

func jsonTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Pointer:
		return jsonTypeName(t.Elem())
	}
	return t.String()
}

// BindQuery fills dst's `form`-tagged string and integer fields from the query
// string and validates it.
func BindQuery(c *gin.Context, dst any) error {
	q := c.Request.URL.Query()
	if err := mapValues(dst, "form", func(name string) (string, bool) {
		if v, ok := q[name]; ok && len(v) > 0 {
			return v[0], true
		}
		return "", false
	}); err != nil {
		return err
	}
	return Validate(dst)
}

// BindURI fills dst's `uri`-tagged fields from the path parameters.
func BindURI(c *gin.Context, dst any) error {
	if err := mapValues(dst, "uri", func(name string) (string, bool) {
		return c.Params.Get(name)
	}); err != nil {
		return err
	}
	return Validate(dst)
}

func mapValues(dst any, tag string, get func(string) (string, bool)) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return apperr.InternalErr(fmt.Errorf("httpx: bind target %T is not a struct pointer", dst))
	}
	rv = rv.Elem()
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get(tag), ",")
		if name == "" || name == "-" {
			continue
		}
		raw, ok := get(name)
		if !ok {
			continue
		}
		fv := rv.Field(i)
		switch fv.Kind() {
		case reflect.String:
			fv.SetString(raw)
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
			if err != nil || fv.OverflowInt(n) {
				return apperr.BadRequest(name + " must be an integer")
			}
			fv.SetInt(n)
		default:
			return apperr.InternalErr(fmt.Errorf("httpx: unsupported %s field kind %s", tag, fv.Kind()))
		}
	}
	return nil
}
