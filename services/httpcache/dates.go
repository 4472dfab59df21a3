package httpcache

import (
	"strings"
	"time"
)

var (
	shortDays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
	longDays  = []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}
	months    = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
)

// parseHTTPDate parses an HTTP-date (RFC 9110 §5.6.7): the preferred
// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") and the two obsolete forms
// a recipient must accept, RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") and
// asctime ("Sun Nov  6 08:49:37 1994"). Day names, month names and "GMT"
// are matched without regard to case; anything else (another zone, a
// missing comma, extra spaces, a two-digit year in IMF-fixdate, a one-digit
// hour) is invalid. now resolves RFC 850's two-digit years: a year more
// than 50 years ahead is taken from the previous century.
func parseHTTPDate(s string, now time.Time) (time.Time, bool) {
	if len(s) < 24 || len(s) > 40 {
		return time.Time{}, false
	}
	if comma := strings.IndexByte(s, ','); comma == 3 {
		return parseIMF(s)
	} else if comma > 3 {
		return parseRFC850(s, comma, now)
	}
	return parseASCTime(s)
}

// parseIMF: day-name "," SP 2DIGIT SP month SP 4DIGIT SP time SP "GMT".
func parseIMF(s string) (time.Time, bool) {
	if len(s) != 29 || !oneOf(s[:3], shortDays) || s[3:5] != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[25] != ' ' {
		return time.Time{}, false
	}
	day, ok1 := digits(s[5:7])
	mon, ok2 := month(s[8:11])
	year, ok3 := digits(s[12:16])
	if !ok1 || !ok2 || !ok3 || !strings.EqualFold(s[26:], "GMT") {
		return time.Time{}, false
	}
	return build(year, mon, day, s[17:25])
}

// parseRFC850: day-name-l "," SP 2DIGIT "-" month "-" 2DIGIT SP time SP "GMT".
func parseRFC850(s string, comma int, now time.Time) (time.Time, bool) {
	if !oneOf(s[:comma], longDays) {
		return time.Time{}, false
	}
	r := s[comma:]
	if len(r) != 24 || r[:2] != ", " || r[4] != '-' || r[8] != '-' || r[11] != ' ' || r[20] != ' ' {
		return time.Time{}, false
	}
	day, ok1 := digits(r[2:4])
	mon, ok2 := month(r[5:8])
	yy, ok3 := digits(r[9:11])
	if !ok1 || !ok2 || !ok3 || !strings.EqualFold(r[21:], "GMT") {
		return time.Time{}, false
	}
	year := now.Year()/100*100 + yy
	if year > now.Year()+50 {
		year -= 100
	}
	return build(year, mon, day, r[12:20])
}

// parseASCTime: day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP time SP 4DIGIT.
func parseASCTime(s string) (time.Time, bool) {
	if len(s) != 24 || !oneOf(s[:3], shortDays) || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ' {
		return time.Time{}, false
	}
	mon, ok1 := month(s[4:7])
	dd := s[8:10]
	if dd[0] == ' ' {
		dd = "0" + dd[1:]
	}
	day, ok2 := digits(dd)
	year, ok3 := digits(s[20:24])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, false
	}
	return build(year, mon, day, s[11:19])
}

// build checks the time of day ("HH:MM:SS") and the calendar date.
func build(year int, mon time.Month, day int, hms string) (time.Time, bool) {
	if len(hms) != 8 || hms[2] != ':' || hms[5] != ':' {
		return time.Time{}, false
	}
	h, ok1 := digits(hms[0:2])
	m, ok2 := digits(hms[3:5])
	sec, ok3 := digits(hms[6:8])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sec > 60 || day < 1 {
		return time.Time{}, false
	}
	if sec == 60 {
		sec = 59 // a leap second
	}
	t := time.Date(year, mon, day, h, m, sec, 0, time.UTC)
	if t.Day() != day {
		return time.Time{}, false // 31 Feb and the like
	}
	return t, true
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, s != ""
}

func month(s string) (time.Month, bool) {
	for i, m := range months {
		if strings.EqualFold(s, m) {
			return time.Month(i + 1), true
		}
	}
	return 0, false
}

func oneOf(s string, set []string) bool {
	for _, v := range set {
		if strings.EqualFold(s, v) {
			return true
		}
	}
	return false
}
