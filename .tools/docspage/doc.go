// Package docspage tests the API documentation page (/docs) as a person
// uses it: headless Chromium (Debian's chromium package, driven through the
// DevTools protocol by chromedp) opens the page on the running local
// platform, checks that every operation of both OpenAPI documents is
// listed, enters the API key and an access token in the Authorize dialog,
// runs "Try it out" on GET /auth/profile/mine (key and token) and on
// GET /blog/list/latest (the key, kept across the switch of document) and
// checks that the platform answered 200 to each — with no request leaving
// 127.0.0.1 and nothing blocked by the page's Content-Security-Policy.
//
// It saves a screenshot of the page (PNG) to $DOCS_SCREENSHOT, or to a
// temporary folder when that is unset. The README's picture is refreshed
// from the repository root with
//
//	DOCS_SCREENSHOT=$PWD/docs/docs-page.png go test -count=1 ./.tools/docspage
//
// Without chromium on PATH (or at $CHROMIUM) the test fails, saying so.
package docspage
