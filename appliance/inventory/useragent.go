package inventory

import "strings"

// uaInfo is what a User-Agent says about the device: a class with a
// confidence, the operating system, and the token that decided.
type uaInfo struct {
	class      Class
	confidence int
	os         string
	token      string
}

// uaRules are tried in order on the lower-cased User-Agent; the first
// whose tokens all appear wins. Order matters: iPad and iPhone before
// Macintosh (their User-Agents say "like Mac OS X"), Windows Phone before
// Windows, Android TV before Android.
//
// Known limits, said plainly: iPadOS 13 and later asks for desktop sites
// and then sends a Macintosh User-Agent, so such an iPad reads as a Mac
// (a laptop guess with low confidence that the DNS-SD model or the host
// name usually overrules); Windows and Linux say nothing of laptop versus
// desktop.
var uaRules = []struct {
	all        []string
	any        []string
	class      Class
	confidence int
	os         string
	token      string
}{
	{all: []string{"ipad"}, class: ClassTablet, confidence: 85, os: "iPadOS", token: "iPad"},
	{any: []string{"iphone", "ipod"}, class: ClassPhone, confidence: 85, os: "iOS", token: "iPhone"},
	{any: []string{"windows phone", "windows mobile"}, class: ClassPhone, confidence: 80, os: "Windows Phone", token: "Windows Phone"},
	{all: []string{"cros "}, class: ClassLaptop, confidence: 70, os: "ChromeOS", token: "CrOS"},
	{all: []string{"android"}, any: []string{"android tv", "googletv", "smart-tv", "smarttv", "bravia", " aft"}, class: ClassInteractiveDisplay, confidence: 45, os: "Android", token: "Android TV"},
	{all: []string{"android", "mobile"}, class: ClassPhone, confidence: 75, os: "Android", token: "Android Mobile"},
	{all: []string{"android"}, class: ClassTablet, confidence: 70, os: "Android", token: "Android (sans « Mobile »)"},
	{any: []string{"kindle", "silk/"}, class: ClassTablet, confidence: 70, os: "Fire OS", token: "Kindle"},
	{any: []string{"smart-tv", "smarttv", "tizen"}, class: ClassInteractiveDisplay, confidence: 45, os: "Tizen", token: "Smart TV"},
	{any: []string{"web0s", "webos"}, class: ClassInteractiveDisplay, confidence: 45, os: "webOS", token: "webOS"},
	{all: []string{"windows nt"}, class: ClassDesktop, confidence: 30, os: "Windows", token: "Windows"},
	{any: []string{"macintosh", "mac os x"}, class: ClassLaptop, confidence: 35, os: "macOS", token: "Macintosh"},
	{all: []string{"x11", "linux"}, class: ClassDesktop, confidence: 30, os: "Linux", token: "Linux X11"},
}

// classifyUA reads a User-Agent. Only its first maxUA bytes are read.
func classifyUA(ua string) uaInfo {
	if len(ua) > maxUA {
		ua = ua[:maxUA]
	}
	low := strings.ToLower(ua)
	if strings.TrimSpace(low) == "" {
		return uaInfo{}
	}
	// Pad so that a token at the very end (e.g. "CrOS ") still matches.
	low += " "
rules:
	for _, r := range uaRules {
		for _, t := range r.all {
			if !strings.Contains(low, t) {
				continue rules
			}
		}
		if len(r.any) > 0 && !containsAny(low, r.any) {
			continue
		}
		return uaInfo{class: r.class, confidence: r.confidence, os: r.os, token: r.token}
	}
	return uaInfo{}
}

func containsAny(s string, subs []string) bool {
	for _, t := range subs {
		if strings.Contains(s, t) {
			return true
		}
	}
	return false
}
