#!/usr/bin/env bash
# shellcheck disable=SC2059 # $fmt: one printf format for the table's header and rows
# bench/http.sh — compare preau's content serving (/c/{pack}/{path}) with
# nginx serving the same files on the same machine, and report preau's
# resident memory. A benchmark, not a test: it exits 0 whatever the figures,
# and non-zero only when something failed to run or answered wrongly.
#
# Usage: bash bench/http.sh            (see bench/README.md)
# Environment:
#   BENCH_PREAU        preau binary (default bin/preau)
#   BENCH_DURATION     wrk duration per run (default 10s)
#   BENCH_CONNECTIONS  wrk connections (default 100)
#   BENCH_THREADS      wrk threads (default 2)
#   BENCH_SEED         seed of the random ranges (default 42)
#   BENCH_ONLY         "nginx" to bench nginx alone (checks the harness
#                      without a preau binary)
#   BENCH_OUT          also write the results as TSV to this file
#   BENCH_KEEP         1 to keep the temporary directory (logs, configs)
#   BENCH_LANG         fr (default) or en
set -euo pipefail

PREAU=${BENCH_PREAU:-bin/preau}
DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-100}
THREADS=${BENCH_THREADS:-2}
SEED=${BENCH_SEED:-42}
ONLY=${BENCH_ONLY:-}
OUT=${BENCH_OUT:-}
KEEP=${BENCH_KEEP:-0}
LANGUAGE=${BENCH_LANG:-fr}
PACK_ID=bench
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

# ---------------------------------------------------------------- tools
for tool in wrk nginx curl sha256sum awk ss head timeout; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "outil manquant : $tool (apt-get install wrk nginx curl)" "missing tool: $tool (apt-get install wrk nginx curl)"
done
if [[ $ONLY != nginx ]]; then
	[[ -x $PREAU ]] || die "binaire preau introuvable : $PREAU (make bin/preau, ou BENCH_PREAU=…)" \
		"preau binary not found: $PREAU (make bin/preau, or BENCH_PREAU=…)"
	PREAU=$(cd "$(dirname "$PREAU")" && pwd)/$(basename "$PREAU")
fi

DUR_S=$(secs "$DURATION")
[[ $DUR_S =~ ^[0-9]+$ && $DUR_S -gt 0 ]] || die "BENCH_DURATION invalide : $DURATION" "invalid BENCH_DURATION: $DURATION"
[[ $CONNECTIONS =~ ^[0-9]+$ && $CONNECTIONS -gt 0 ]] || die "BENCH_CONNECTIONS invalide : $CONNECTIONS" "invalid BENCH_CONNECTIONS: $CONNECTIONS"

# ---------------------------------------------------------------- cleanup
WORK=$(mktemp -d /tmp/preau-bench.XXXXXX)
PREAU_PID=
NGINX_PID=
# shellcheck disable=SC2317 # called from the trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$PREAU_PID"
	stop_pid "$NGINX_PID"
	if [[ $KEEP == 1 || ( $rc -ne 0 && $rc -ne 130 ) ]]; then
		say "fichiers gardés dans $WORK" "files kept in $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- 1. pack
PACK=$WORK/pack
mkdir -p "$PACK"
# nginx workers run as nobody: let them read the files.
chmod 0755 "$WORK" "$PACK"
declare -A SIZE=([f4k.bin]=4096 [f1m.bin]=1048576 [f50m.bin]=52428800)
FILES=(f4k.bin f1m.bin f50m.bin)
say "préparation du paquet (4 Ko, 1 Mo, 50 Mo aléatoires)…" "making the pack (random 4 KB, 1 MB, 50 MB)…"
items=
for f in "${FILES[@]}"; do
	head -c "${SIZE[$f]}" /dev/urandom >"$PACK/$f"
	chmod 0644 "$PACK/$f"
	sum=$(sha256sum "$PACK/$f" | awk '{print $1}')
	declare "SUM_${f//./_}=$sum"
	id=${f%.bin}
	items+=$(printf '%s    {"id": "%s", "title": "Fichier %s", "kind": "document", "levels": [], "subjects": [], "licence": "CC0-1.0", "entry": "%s", "files": [{"path": "%s", "size": %d, "sha256": "%s", "media_type": "application/octet-stream"}]}' \
		"${items:+,$'\n'}" "$id" "$id" "$f" "$f" "${SIZE[$f]}" "$sum")
done
cat >"$PACK/preau-pack.json" <<EOF
{
  "format": 1,
  "id": "$PACK_ID",
  "version": "1",
  "title": "Banc d'essai HTTP",
  "publisher": "Projet Préau",
  "language": "fr",
  "items": [
$items
  ]
}
EOF
chmod 0644 "$PACK/preau-pack.json"
if command -v jq >/dev/null 2>&1; then
	jq -e . "$PACK/preau-pack.json" >/dev/null || die "manifeste JSON invalide" "invalid JSON manifest"
fi

PORTS=()
if [[ $ONLY != nginx ]]; then
	DATA=$WORK/data
	say "import du paquet dans $DATA…" "importing the pack into $DATA…"
	timeout 300 "$PREAU" import "$PACK" --data "$DATA" >"$WORK/import.log" 2>&1 ||
		{ cat "$WORK/import.log" >&2; die "échec de preau import" "preau import failed"; }
	PREAU_PORT=$(free_port) || die "aucun port libre" "no free port"
	PORTS+=("$PREAU_PORT")
	"$PREAU" run --data "$DATA" --http "127.0.0.1:$PREAU_PORT" >"$WORK/preau.log" 2>&1 &
	PREAU_PID=$!
	wait_http "http://127.0.0.1:$PREAU_PORT/healthz" 60 "$PREAU_PID" ||
		{ tail -n 30 "$WORK/preau.log" >&2; die "preau ne répond pas sur /healthz" "preau does not answer /healthz"; }
fi

# ---------------------------------------------------------------- 2. nginx
NGINX_PORT=$(free_port "${PORTS[@]}") || die "aucun port libre" "no free port"
NGX=$WORK/nginx
mkdir -p "$NGX/tmp" "$NGX/logs"
cat >"$NGX/nginx.conf" <<EOF
# Private nginx for bench/http.sh: same files, same URL paths as preau.
worker_processes auto;
daemon off;
pid $NGX/nginx.pid;
error_log $NGX/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    etag on;
    # nginx closes a keep-alive connection after 1000 requests by default;
    # preau does not, so neither does this nginx.
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path $NGX/tmp/body;
    proxy_temp_path $NGX/tmp/proxy;
    fastcgi_temp_path $NGX/tmp/fastcgi;
    uwsgi_temp_path $NGX/tmp/uwsgi;
    scgi_temp_path $NGX/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location /c/$PACK_ID/ { alias $PACK/; }
    }
}
EOF
nginx -t -q -e "$NGX/logs/error.log" -p "$NGX" -c "$NGX/nginx.conf" 2>"$NGX/logs/test.log" ||
	{ cat "$NGX/logs/test.log" >&2; die "configuration nginx refusée" "nginx configuration refused"; }
nginx -e "$NGX/logs/error.log" -p "$NGX" -c "$NGX/nginx.conf" >"$NGX/logs/stdout.log" 2>&1 &
NGINX_PID=$!
wait_http "http://127.0.0.1:$NGINX_PORT/c/$PACK_ID/f4k.bin" 20 "$NGINX_PID" ||
	{ cat "$NGX/logs/error.log" >&2; die "nginx ne démarre pas" "nginx does not start"; }

# ---------------------------------------------------------------- sanity
# Both servers must send the right bytes and honour Range before their speed
# means anything.
SERVERS=(nginx)
declare -A BASE=([nginx]="http://127.0.0.1:$NGINX_PORT/c/$PACK_ID")
if [[ $ONLY != nginx ]]; then
	SERVERS=(preau nginx)
	BASE[preau]="http://127.0.0.1:$PREAU_PORT/c/$PACK_ID"
fi
for s in "${SERVERS[@]}"; do
	for f in "${FILES[@]}"; do
		want=SUM_${f//./_}
		got=$(curl -fsS -m 60 "${BASE[$s]}/$f" | sha256sum | awk '{print $1}') ||
			die "$s : échec du GET $f" "$s: GET $f failed"
		[[ $got == "${!want}" ]] || die "$s : $f a un mauvais sha256 ($got)" "$s: $f has a wrong sha256 ($got)"
	done
	read -r code size < <(curl -sS -m 10 -o /dev/null -w '%{http_code} %{size_download}\n' -r 1000-66535 "${BASE[$s]}/f50m.bin")
	[[ $code == 206 && $size == 65536 ]] ||
		die "$s : Range mal servi (HTTP $code, $size octets, attendu 206 et 65536)" "$s: Range served wrongly (HTTP $code, $size bytes, want 206 and 65536)"
done

if [[ $ONLY != nginx ]]; then
	sleep 2
	IDLE_RSS=$(rss "$PREAU_PID" VmRSS)
	IDLE_HWM=$(rss "$PREAU_PID" VmHWM)
fi

# ---------------------------------------------------------------- 3. wrk
# run_wrk SERVER CASE URL [LUA]: one wrk run, results into R_* arrays.
declare -A R_RPS R_MBS R_P99 R_ERR
run_wrk() {
	local s=$1 c=$2 url=$3 lua=${4:-} log=$WORK/wrk-$1-$2.log
	local args=(-t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency --timeout 30s)
	[[ -n $lua ]] && args+=(-s "$lua")
	say "wrk $s $c ($DURATION, $CONNECTIONS connexions)…" "wrk $s $c ($DURATION, $CONNECTIONS connections)…"
	BENCH_SEED=$SEED BENCH_RANGE_SIZE=${SIZE[f50m.bin]} \
		timeout $((DUR_S + 60)) wrk "${args[@]}" "$url" >"$log" 2>&1 ||
		{ cat "$log" >&2; die "échec de wrk ($s $c)" "wrk failed ($s $c)"; }
	local parsed rps mbs p99 err
	parsed=$(parse_wrk "$log") || { cat "$log" >&2; die "sortie de wrk illisible ($s $c)" "cannot parse wrk output ($s $c)"; }
	read -r rps mbs p99 err <<<"$parsed"
	R_RPS["$s,$c"]=$rps
	R_MBS["$s,$c"]=$mbs
	R_P99["$s,$c"]=$p99
	R_ERR["$s,$c"]=$err
}

CASES=("4 KB" "1 MB" "50 MB" "range 50 MB")
declare -A CASE_FILE=(["4 KB"]=f4k.bin ["1 MB"]=f1m.bin ["50 MB"]=f50m.bin ["range 50 MB"]=f50m.bin)
for c in "${CASES[@]}"; do
	lua=
	[[ $c == range* ]] && lua=$HERE/range.lua
	for s in "${SERVERS[@]}"; do
		run_wrk "$s" "$c" "${BASE[$s]}/${CASE_FILE[$c]}" "$lua"
	done
done
if [[ $ONLY != nginx ]]; then
	LOAD_RSS=$(rss "$PREAU_PID" VmRSS)
	PEAK_HWM=$(rss "$PREAU_PID" VmHWM)
fi

# ---------------------------------------------------------------- 4. report
declare -A TARGET=(["4 KB"]=0.7 ["1 MB"]=1.0 ["50 MB"]=1.0)

echo
printf '%s\n' "$(l10n "preau contre nginx — $CONNECTIONS connexions, $THREADS fils wrk, $DURATION par mesure, $(nproc) cœurs partagés" \
	"preau vs nginx — $CONNECTIONS connections, $THREADS wrk threads, $DURATION per run, $(nproc) shared cores")"
fmt='%-12s %11s %11s %6s %10s %10s %6s %10s %10s  %s\n'
printf "$fmt" "$(l10n cas case)" "preau req/s" "nginx req/s" ratio "preau MB/s" "nginx MB/s" ratio "p99 preau" "p99 nginx" "$(l10n objectif target)"
errors=0
[[ -n $OUT ]] && printf 'case\tpreau_rps\tnginx_rps\trps_ratio\tpreau_mbs\tnginx_mbs\tmbs_ratio\tpreau_p99_ms\tnginx_p99_ms\ttarget\tverdict\n' >"$OUT"
for c in "${CASES[@]}"; do
	rr=$(ratio "${R_RPS[preau,$c]:-}" "${R_RPS[nginx,$c]}")
	mr=$(ratio "${R_MBS[preau,$c]:-}" "${R_MBS[nginx,$c]}")
	target=-
	v=
	if [[ -n ${TARGET[$c]:-} && $ONLY != nginx ]]; then
		# wrk counts the bytes of unfinished responses too, so MB/s is the
		# fair figure for big files; for 4 KB both ratios agree.
		if [[ $c == "4 KB" ]]; then
			target="req/s ≥${TARGET[$c]}×"
			v=$(verdict "$rr" ">=" "${TARGET[$c]}")
		else
			target="MB/s ≥${TARGET[$c]}×"
			v=$(verdict "$mr" ">=" "${TARGET[$c]}")
		fi
	fi
	p99p=${R_P99[preau,$c]:-}
	printf "$fmt" "$c" "${R_RPS[preau,$c]:--}" "${R_RPS[nginx,$c]}" "$rr" "${R_MBS[preau,$c]:--}" "${R_MBS[nginx,$c]}" "$mr" \
		"${p99p:+${p99p}ms}" "${R_P99[nginx,$c]}ms" "$target $v"
	[[ -n $OUT ]] && printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "${R_RPS[preau,$c]:-}" "${R_RPS[nginx,$c]}" "$rr" \
		"${R_MBS[preau,$c]:-}" "${R_MBS[nginx,$c]}" "$mr" "${R_P99[preau,$c]:-}" "${R_P99[nginx,$c]}" "${TARGET[$c]:-}" "$v" >>"$OUT"
	for s in "${SERVERS[@]}"; do
		if [[ ${R_ERR[$s,$c]} -ne 0 ]]; then
			say "  ! $s $c : ${R_ERR[$s,$c]} erreurs (réponses non 2xx, connexions refusées ou délais dépassés), voir $WORK/wrk-$s-$c.log" \
				"  ! $s $c: ${R_ERR[$s,$c]} errors (non-2xx answers, refused connections or timeouts), see $WORK/wrk-$s-$c.log"
			errors=1
		fi
	done
done
if [[ $ONLY != nginx ]]; then
	echo
	printf '%s\n' "$(l10n "mémoire résidente de preau (/proc/$PREAU_PID/status) :" "preau resident memory (/proc/$PREAU_PID/status):")"
	printf '  %s : VmRSS %7s MB  VmHWM %7s MB   %s ≤40 MB %s\n' "$(l10n "au repos (démarrage + 2 s)" "idle (start + 2 s)")" \
		"$IDLE_RSS" "$IDLE_HWM" "$(l10n objectif target)" "$(verdict "$IDLE_RSS" "<=" 40)"
	printf '  %s : VmRSS %7s MB  VmHWM %7s MB\n' "$(l10n "après la charge (pic = HWM)" "after load (peak = HWM)")" "$LOAD_RSS" "$PEAK_HWM"
	[[ -n $OUT ]] && printf 'memory idle\tVmRSS_MB=%s\tVmHWM_MB=%s\npeak under load\tVmRSS_MB=%s\tVmHWM_MB=%s\n' \
		"$IDLE_RSS" "$IDLE_HWM" "$LOAD_RSS" "$PEAK_HWM" >>"$OUT"
fi
echo
# Errors under load mean the figures are not comparable: report a failure.
if [[ $errors -ne 0 ]]; then
	exit 1
fi
exit 0
