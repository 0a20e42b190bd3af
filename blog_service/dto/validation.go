package dto

import "blogplatform/chassis/httpx"

// SizeStyle is the blog bodies' validation wording: lengths read "must be at
// least 3 size" and a malformed URL or URI "must be a valid URL/URI", as the
// blog API has always answered; everything else is the chassis default.
func SizeStyle() httpx.Style {
	s := httpx.DefaultStyle()
	s.Min = "%[1]s must be at least %[2]s size"
	s.Max = "%[1]s must be at most %[2]s size"
	s.URL = "%[1]s must be a valid URL"
	s.URI = "%[1]s must be a valid URI"
	return s
}

// PageStyle is the pagination wording ("page must be min 1"). Pagination
// can fail only these rules; any other reads "<field> is invalid".
func PageStyle() httpx.Style {
	return httpx.Style{
		Required: "%[1]s is required",
		Min:      "%[1]s must be min %[2]s",
		Max:      "%[1]s must be at most %[2]s",
		Default:  "%[1]s is invalid",
	}
}
