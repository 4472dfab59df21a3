package httpcache

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestParseCacheControl(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		check func(d directives) bool
	}{
		{"max-age", []string{"max-age=3600"}, func(d directives) bool { return d.maxAge == 3600 && !d.maxAgeInvalid }},
		{"case-insensitive", []string{"MaX-aGe=3600"}, func(d directives) bool { return d.maxAge == 3600 }},
		{"quoted value", []string{`max-age="3600"`}, func(d directives) bool { return d.maxAge == 3600 }},
		{"leading zeros", []string{"max-age=003600"}, func(d directives) bool { return d.maxAge == 3600 }},
		{"single quotes invalid", []string{"max-age='3600'"}, func(d directives) bool { return d.maxAgeInvalid }},
		{"space before = invalid", []string{"max-age =3600"}, func(d directives) bool { return d.maxAgeInvalid }},
		{"space after = invalid", []string{"max-age= 3600"}, func(d directives) bool { return d.maxAgeInvalid }},
		{"negative invalid", []string{"max-age=-1"}, func(d directives) bool { return d.maxAgeInvalid }},
		{"decimal invalid", []string{"max-age=3600.5"}, func(d directives) bool { return d.maxAgeInvalid }},
		{"trailing alpha invalid", []string{"max-age=3600a"}, func(d directives) bool { return d.maxAgeInvalid }},
		{"overflow capped", []string{"max-age=99999999999999999999"}, func(d directives) bool { return d.maxAge == maxDelta }},
		{"2^31 kept", []string{"max-age=2147483648"}, func(d directives) bool { return d.maxAge == maxDelta }},
		{"first occurrence wins", []string{"max-age=1800, max-age=1"}, func(d directives) bool { return d.maxAge == 1800 }},
		{"first occurrence across lines", []string{"max-age=1", "max-age=1800"}, func(d directives) bool { return d.maxAge == 1 }},
		{"quoted string hides max-age", []string{`extension="max-age=3600", max-age=1`}, func(d directives) bool { return d.maxAge == 1 }},
		{"quoted comma", []string{`foo="a,b", no-store`}, func(d directives) bool { return d.noStore }},
		{"s-maxage", []string{"max-age=1, s-maxage=3600"}, func(d directives) bool { return d.sMaxAge == 3600 && d.maxAge == 1 }},
		{"no-cache unqualified", []string{"No-CaChE"}, func(d directives) bool { return d.noCache }},
		{"no-cache qualified", []string{`no-cache="a, B"`}, func(d directives) bool {
			return !d.noCache && reflect.DeepEqual(d.noCacheFields, []string{"a", "b"})
		}},
		{"private qualified", []string{`private="Set-Cookie"`}, func(d directives) bool {
			return !d.private && reflect.DeepEqual(d.privateFields, []string{"set-cookie"})
		}},
		{"flags", []string{"public, must-revalidate, proxy-revalidate, no-store, must-understand, immutable"}, func(d directives) bool {
			return d.public && d.mustRevalidate && d.proxyRevalidate && d.noStore && d.mustUnderstand && d.immutable
		}},
		{"rfc 5861", []string{"stale-while-revalidate=30, stale-if-error=600"}, func(d directives) bool {
			return d.staleWhileRevalid == 30 && d.staleIfError == 600
		}},
		{"request max-stale any", []string{"max-stale"}, func(d directives) bool { return d.maxStaleAny && d.maxStale == -1 }},
		{"request max-stale value", []string{"max-stale=10, min-fresh=5, only-if-cached"}, func(d directives) bool {
			return d.maxStale == 10 && d.minFresh == 5 && d.onlyIfCached
		}},
		{"empty members", []string{",, ,max-age=5,"}, func(d directives) bool { return d.maxAge == 5 }},
		{"unknown ignored", []string{"nothing-to-see-here"}, func(d directives) bool { return d.maxAge == -1 && !d.noStore }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseCacheControl(tt.lines)
			if !tt.check(got) {
				t.Errorf("parseCacheControl(%q) = %+v", tt.lines, got)
			}
		})
	}
}

func TestParseTargeted(t *testing.T) {
	tests := []struct {
		value  string
		wantOK bool
		maxAge int64
		other  func(d directives) bool
	}{
		{"max-age=3600", true, 3600, nil},
		{"foobar, max-age=3600", true, 3600, nil},
		{"max-age=99999999999", true, maxDelta, nil},
		{"MaX-aGe=3600", false, 0, nil},         // keys are lower-case in Structured Fields
		{"max-age =100", false, 0, nil},         // not a dictionary
		{"max-age= 100", false, 0, nil},         // not a dictionary
		{"max-age=10000, &&&&&", false, 0, nil}, // invalid key
		{`max-age="10000"`, true, -1, nil},      // valid, wrong type: directive ignored
		{"max-age=1, max-age=2", true, 2, nil},  // last value wins in a dictionary
		{"no-store", true, -1, func(d directives) bool { return d.noStore }},
		{"private", true, -1, func(d directives) bool { return d.private }},
		{"no-cache", true, -1, func(d directives) bool { return d.noCache }},
		{`no-cache=("set-cookie")`, true, -1, func(d directives) bool { return !d.noCache && len(d.noCacheFields) == 1 }},
		{"max-age=10;foo=bar, must-revalidate", true, 10, func(d directives) bool { return d.mustRevalidate }},
		{"", false, 0, nil},
		{"max-age=1,", false, 0, nil},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.value != "" {
			h.Set("Cdn-Cache-Control", tt.value)
		}
		d, ok := parseTargeted(h, "Cdn-Cache-Control")
		if ok != tt.wantOK {
			t.Errorf("parseTargeted(%q) ok = %v, want %v", tt.value, ok, tt.wantOK)
			continue
		}
		if ok && d.maxAge != tt.maxAge {
			t.Errorf("parseTargeted(%q) max-age = %d, want %d", tt.value, d.maxAge, tt.maxAge)
		}
		if ok && tt.other != nil && !tt.other(d) {
			t.Errorf("parseTargeted(%q) = %+v", tt.value, d)
		}
	}
}

func TestParseHTTPDate(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	want := time.Date(2050, 8, 18, 2, 1, 18, 0, time.UTC)
	tests := []struct {
		in   string
		ok   bool
		want time.Time
	}{
		{"Thu, 18 Aug 2050 02:01:18 GMT", true, want},
		{"THU, 18 AUG 2050 02:01:18 gmt", true, want},
		{"Thursday, 18-Aug-50 02:01:18 GMT", true, want},
		{"Thursday, 18-Aug-94 02:01:18 GMT", true, time.Date(1994, 8, 18, 2, 1, 18, 0, time.UTC)},
		{"Thu Aug 18 02:01:18 2050", true, want},
		{"Thu Aug  8 02:01:18 2050", true, time.Date(2050, 8, 8, 2, 1, 18, 0, time.UTC)},
		{"Tue, 19 Jan 2038 14:14:08 GMT", true, time.Date(2038, 1, 19, 14, 14, 8, 0, time.UTC)},
		{"Sun, 21 Nov 2286 04:46:39 GMT", true, time.Date(2286, 11, 21, 4, 46, 39, 0, time.UTC)},
		{"Thu, 18 Aug 2050 02:01:18 UTC", false, time.Time{}},
		{"Thu, 18 Aug 2050 02:01:18 AEST", false, time.Time{}},
		{"Thu, 18 Aug 50 02:01:18 GMT", false, time.Time{}},
		{"Thu 18 Aug 2050 02:01:18 GMT", false, time.Time{}},
		{"Thu, 18  Aug  2050 02:01:18 GMT", false, time.Time{}},
		{"Thu, 18-Aug-2050 02:01:18 GMT", false, time.Time{}},
		{"Thu, 18 Aug 2050 02.01.18 GMT", false, time.Time{}},
		{"Thu, 18 Aug 2050 2:01:18 GMT", false, time.Time{}},
		{"Thu, 31 Feb 2050 02:01:18 GMT", false, time.Time{}},
		{"Thu, 18 Aug 2050 24:01:18 GMT", false, time.Time{}},
		{"0", false, time.Time{}},
		{"", false, time.Time{}},
	}
	for _, tt := range tests {
		got, ok := parseHTTPDate(tt.in, now)
		if ok != tt.ok || ok && !got.Equal(tt.want) {
			t.Errorf("parseHTTPDate(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseAge(t *testing.T) {
	tests := []struct {
		lines []string
		want  int64
	}{
		{nil, 0},
		{[]string{"30"}, 30},
		{[]string{"abc"}, 0},
		{[]string{"-7200"}, 0},
		{[]string{"7200.0"}, 0},
		{[]string{"7200,0"}, 7200},
		{[]string{"0, 7200"}, 0},
		{[]string{"7200", "0"}, 7200},
		{[]string{"99999999999999"}, maxDelta},
	}
	for _, tt := range tests {
		if got := parseAge(tt.lines); got != tt.want {
			t.Errorf("parseAge(%q) = %d, want %d", tt.lines, got, tt.want)
		}
	}
}

func TestVary(t *testing.T) {
	names, star := parseVary([]string{"foo, Bar", "", "accept-language"})
	if star || !reflect.DeepEqual(names, []string{"Accept-Language", "Bar", "Foo"}) {
		t.Errorf("parseVary = %q, %v", names, star)
	}
	for _, lines := range [][]string{{"*"}, {"*, *"}, {", *"}, {"", "*"}, {"Foo, *"}, {"*, Foo"}} {
		if _, star := parseVary(lines); !star {
			t.Errorf("parseVary(%q) star = false", lines)
		}
	}
	tests := []struct {
		name    string
		stored  http.Header
		req     http.Header
		content string // Content-Language of the stored response
		want    bool
	}{
		{"equal", http.Header{"Foo": {"1"}}, http.Header{"Foo": {"1"}}, "", true},
		{"different", http.Header{"Foo": {"1"}}, http.Header{"Foo": {"2"}}, "", false},
		{"absent in both", http.Header{}, http.Header{}, "", true},
		{"absent in stored", http.Header{}, http.Header{"Foo": {"1"}}, "", false},
		{"absent in request", http.Header{"Foo": {"1"}}, http.Header{}, "", false},
		{"lines combined", http.Header{"Foo": {"1, 2"}}, http.Header{"Foo": {"1", "2"}}, "", true},
		{"spaces removed", http.Header{"Foo": {"1,2"}}, http.Header{"Foo": {" 1, 2 "}}, "", true},
		{"language order", http.Header{"Accept-Language": {"en, de"}}, http.Header{"Accept-Language": {"de, en"}}, "", true},
		{"language case", http.Header{"Accept-Language": {"en, de"}}, http.Header{"Accept-Language": {"eN, De"}}, "", true},
		{"language q kept", http.Header{"Accept-Language": {"en;q=0.5, de"}}, http.Header{"Accept-Language": {"en, de;q=0.5"}}, "", false},
		{"language selected", http.Header{"Accept-Language": {"en, de"}}, http.Header{"Accept-Language": {"fr;q=0.5, de;q=1.0"}}, "de", true},
		{"language not selected", http.Header{"Accept-Language": {"en, de"}}, http.Header{"Accept-Language": {"fr, de;q=0.5"}}, "de", false},
	}
	for _, tt := range tests {
		names := []string{"Foo"}
		if _, ok := tt.stored["Accept-Language"]; ok {
			names = []string{"Accept-Language"}
		} else if _, ok := tt.req["Accept-Language"]; ok {
			names = []string{"Accept-Language"}
		}
		fs := varyFields(names, tt.stored)
		back, ok := decodeVary(encodeVary(fs))
		if !ok || !reflect.DeepEqual(back, fs) && len(fs) > 0 {
			t.Errorf("%s: encode/decode round trip: %+v → %+v", tt.name, fs, back)
		}
		if got := varyMatches(back, tt.req, tt.content); got != tt.want {
			t.Errorf("%s: varyMatches = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestETags(t *testing.T) {
	tests := []struct {
		list, stored string
		strong, want bool
	}{
		{`"a"`, `"a"`, true, true},
		{`W/"a"`, `"a"`, true, false},
		{`W/"a"`, `"a"`, false, true},
		{`"x", "a", "y"`, `"a"`, false, true},
		{`*`, `"a"`, true, true},
		{`"b"`, `"a"`, false, false},
		{`a`, `"a"`, false, true}, // unquoted, read as if quoted
		{`"a"`, ``, false, false},
	}
	for _, tt := range tests {
		if got := etagListMatches(tt.list, tt.stored, tt.strong); got != tt.want {
			t.Errorf("etagListMatches(%q, %q, strong=%v) = %v, want %v", tt.list, tt.stored, tt.strong, got, tt.want)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	h := http.Header{"Etag": {`"abcdef\xfc"`}, "Set-Cookie": {"a=b", "c=d"}, "X-Empty": {""}}
	got, ok := decodeHeader(encodeHeader(h))
	if !ok || !reflect.DeepEqual(got, h) {
		t.Errorf("decodeHeader(encodeHeader(%v)) = %v, %v", h, got, ok)
	}
	if _, ok := decodeHeader([]byte("no separator\r\n")); ok {
		t.Error("decodeHeader accepted a line without separator")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "httpcache config: dir is empty"},
		{Config{Dir: "rel"}, `httpcache config: dir "rel" is not absolute`},
		{Config{Dir: "/x", MaxBytes: -1}, "httpcache config: max bytes must be positive"},
		{Config{Dir: "/x", Name: "a b"}, `httpcache config: name "a b" is not a token`},
		{Config{Dir: "/x", ConnectPorts: []int{70000}}, "httpcache config: connect port 70000 out of range"},
		{Config{Dir: "/x"}, ""},
	}
	for _, tt := range tests {
		err := tt.cfg.WithDefaults().Validate()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("Validate(%+v) = %q, want %q", tt.cfg, got, tt.want)
		}
	}
}
