# shellcheck shell=bash
# bench/lib.sh — helpers shared by the benchmark scripts (http.sh, cache.sh):
# messages in French or English, ports, process stops, waits, wrk parsing,
# memory and ratios. Sourced, never run. The sourcing script sets LANGUAGE
# (fr or en) before calling say/die.

# l10n FR EN: the message in the chosen language (French first).
l10n() { if [[ ${LANGUAGE:-fr} == en ]]; then printf '%s' "$2"; else printf '%s' "$1"; fi; }
say() { printf '%s\n' "$(l10n "$1" "$2")" >&2; }
die() { printf 'bench: %s\n' "$(l10n "$1" "$2")" >&2; exit 1; }

# Seconds in a wrk duration (10s, 2m, 30).
secs() {
	local d=$1
	case $d in
	*m) echo $((${d%m} * 60)) ;;
	*s) echo "${d%s}" ;;
	*) echo "$d" ;;
	esac
}

# stop_pid PID: TERM, wait up to 5 s, then KILL.
stop_pid() {
	local pid=$1 i
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# free_port [USED...]: a TCP port on 127.0.0.1 nobody listens on, not in the
# list given.
free_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 40000))
		[[ " $* " == *" $p "* ]] && continue
		if [[ -z $(ss -Htan "sport = :$p" 2>/dev/null) ]]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# wait_http URL SECONDS PID: until URL answers 2xx, while PID lives.
wait_http() {
	local url=$1 limit=$2 pid=$3 i
	for ((i = 0; i < limit * 10; i++)); do
		if curl -fsS -m 2 -o /dev/null "$url" 2>/dev/null; then return 0; fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# parse_wrk FILE: "req/s MB/s p99_ms errors" from wrk's --latency report.
parse_wrk() {
	awk '
	function mb(v,   n, u) { # wrk prints binary units: 12.3MB, 456.7KB, 1.2GB
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "B") return n / 1048576
		if (u == "KB") return n / 1024
		if (u == "MB") return n
		if (u == "GB") return n * 1024
		if (u == "TB") return n * 1048576
		return -1
	}
	function ms(v,   n, u) { # 850.00us, 12.34ms, 1.20s, 2.00m
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") return n / 1000
		if (u == "ms") return n
		if (u == "s") return n * 1000
		if (u == "m") return n * 60000
		if (u == "h") return n * 3600000
		return -1
	}
	/^Requests\/sec:/ { rps = $2 }
	/^Transfer\/sec:/ { mbs = mb($2) }
	$1 == "99%" { p99 = ms($2) }
	/Non-2xx or 3xx responses:/ { err += $NF }
	/Socket errors:/ { # connect N, read N, write N, timeout N
		for (i = 3; i <= NF; i += 2) { n = $(i + 1); gsub(/,/, "", n); if ($i != "read") err += n }
	}
	END {
		if (rps == "" || mbs == "" || p99 == "" || mbs < 0 || p99 < 0) exit 1
		printf "%.0f %.1f %.2f %d\n", rps, mbs, p99, err
	}' "$1"
}

# rss PID FIELD: FIELD (VmRSS, VmHWM) of one process in MB, one decimal.
rss() {
	awk -v f="$2:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# rss_tree PID FIELD: FIELD summed over PID and its direct children (nginx's
# master and workers), in MB with one decimal.
rss_tree() {
	local pid=$1 field=$2 p files=()
	for p in "$pid" $(pgrep -P "$pid" 2>/dev/null); do
		[[ -r /proc/$p/status ]] && files+=("/proc/$p/status")
	done
	awk -v f="$field:" '$1 == f { s += $2 } END { printf "%.1f", s / 1024 }' "${files[@]}"
}

# ratio A B: A/B with two decimals, "-" when B is zero or missing.
ratio() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }

# verdict VALUE OP LIMIT: PASS or MISS.
verdict() { awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN { ok = (op == ">=") ? (v + 0 >= l + 0) : (v + 0 <= l + 0); print (v == "-") ? "MISS" : (ok ? "PASS" : "MISS") }'; }
