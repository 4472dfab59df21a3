#!/usr/bin/env bash
# shellcheck disable=SC2059 # $fmt: one printf format for the table's header and rows
# bench/cache.sh — compare preau's HTTP cache (`preau mirror`, a reverse-proxy
# mirror of one origin) with nginx's proxy_cache in front of the same origin,
# on the same machine: cache hits of 4 KB and 1 MB objects, and 30 clients
# streaming the same cached 200 MB video with random seeks (Range requests).
# Both caches are warmed, then the origin is stopped, so every measured
# answer is a hit served from the cache's own storage. Reports req/s, MB/s,
# p99, the ratio preau/nginx and the resident memory of both.
# A benchmark, not a test: it exits 0 whatever the figures, and non-zero only
# when something failed to run or answered wrongly.
#
# Usage: bash bench/cache.sh            (see bench/README.md; make bench-cache)
# Environment:
#   BENCH_PREAU        preau binary (default bin/preau)
#   BENCH_DURATION     wrk duration per run (default 10s)
#   BENCH_CONNECTIONS  wrk connections, i.e. clients (default 30)
#   BENCH_THREADS      wrk threads (default 2)
#   BENCH_VIDEO_MB     size of the video in MiB (default 200)
#   BENCH_SEED         seed of the random seeks (default 42)
#   BENCH_OUT          also write the results as TSV to this file
#   BENCH_KEEP         1 to keep the temporary directory (logs, configs)
#   BENCH_LANG         fr (default) or en
set -euo pipefail

PREAU=${BENCH_PREAU:-bin/preau}
DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-30}
THREADS=${BENCH_THREADS:-2}
VIDEO_MB=${BENCH_VIDEO_MB:-200}
SEED=${BENCH_SEED:-42}
OUT=${BENCH_OUT:-}
KEEP=${BENCH_KEEP:-0}
LANGUAGE=${BENCH_LANG:-fr}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

for tool in wrk nginx curl sha256sum awk ss head timeout pgrep; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "outil manquant : $tool (apt-get install wrk nginx curl procps)" "missing tool: $tool (apt-get install wrk nginx curl procps)"
done
[[ -x $PREAU ]] || die "binaire preau introuvable : $PREAU (make bin/preau, ou BENCH_PREAU=…)" \
	"preau binary not found: $PREAU (make bin/preau, or BENCH_PREAU=…)"
PREAU=$(cd "$(dirname "$PREAU")" && pwd)/$(basename "$PREAU")
DUR_S=$(secs "$DURATION")
[[ $DUR_S =~ ^[0-9]+$ && $DUR_S -gt 0 ]] || die "BENCH_DURATION invalide : $DURATION" "invalid BENCH_DURATION: $DURATION"
[[ $CONNECTIONS =~ ^[0-9]+$ && $CONNECTIONS -gt 0 ]] || die "BENCH_CONNECTIONS invalide : $CONNECTIONS" "invalid BENCH_CONNECTIONS: $CONNECTIONS"
[[ $VIDEO_MB =~ ^[0-9]+$ && $VIDEO_MB -gt 1 ]] || die "BENCH_VIDEO_MB invalide : $VIDEO_MB" "invalid BENCH_VIDEO_MB: $VIDEO_MB"

# ---------------------------------------------------------------- cleanup
WORK=$(mktemp -d /tmp/preau-bench-cache.XXXXXX)
ORIGIN_PID=
PREAU_PID=
NGINX_PID=
# shellcheck disable=SC2317 # called from the trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$PREAU_PID"
	stop_pid "$NGINX_PID"
	stop_pid "$ORIGIN_PID"
	if [[ $KEEP == 1 || ($rc -ne 0 && $rc -ne 130) ]]; then
		say "fichiers gardés dans $WORK" "files kept in $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- 1. files
SITE=$WORK/site
mkdir -p "$SITE"
chmod 0755 "$WORK" "$SITE" # nginx workers run as nobody
declare -A SIZE=([f4k.bin]=4096 [f1m.bin]=1048576 [video.mp4]=$((VIDEO_MB * 1048576)))
FILES=(f4k.bin f1m.bin video.mp4)
say "préparation des fichiers (4 Ko, 1 Mo, vidéo de $VIDEO_MB Mo, octets aléatoires)…" \
	"making the files (random 4 KB, 1 MB, $VIDEO_MB MB video)…"
declare -A SUM
for f in "${FILES[@]}"; do
	head -c "${SIZE[$f]}" /dev/urandom >"$SITE/$f"
	chmod 0644 "$SITE/$f"
	SUM[$f]=$(sha256sum "$SITE/$f" | awk '{print $1}')
done

# nginx_conf DIR PORT BODY: a private nginx configuration around BODY (the
# server blocks), with every temporary path inside DIR.
nginx_conf() {
	local dir=$1 body=$2
	mkdir -p "$dir/tmp" "$dir/logs"
	cat >"$dir/nginx.conf" <<CONF
worker_processes ${3:-auto};
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    # nginx closes a keep-alive connection after 1000 requests by default;
    # preau does not, so neither does this nginx.
    keepalive_requests 1000000;
    types { video/mp4 mp4; }
    default_type application/octet-stream;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
$body
}
CONF
	nginx -t -q -e "$dir/logs/error.log" -p "$dir" -c "$dir/nginx.conf" 2>"$dir/logs/test.log" ||
		{ cat "$dir/logs/test.log" >&2; die "configuration nginx refusée ($dir)" "nginx configuration refused ($dir)"; }
}

# ---------------------------------------------------------------- 2. origin
# The origin: a plain nginx serving the files, fresh for a day. Stopped once
# both caches are warm.
ORIGIN_PORT=$(free_port) || die "aucun port libre" "no free port"
nginx_conf "$WORK/origin" "    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        root $SITE;
        etag on;
        add_header Cache-Control \"public, max-age=86400\";
    }" 1
nginx -e "$WORK/origin/logs/error.log" -p "$WORK/origin" -c "$WORK/origin/nginx.conf" >"$WORK/origin/logs/stdout.log" 2>&1 &
ORIGIN_PID=$!
wait_http "http://127.0.0.1:$ORIGIN_PORT/f4k.bin" 20 "$ORIGIN_PID" ||
	{ cat "$WORK/origin/logs/error.log" >&2; die "l'origine (nginx) ne démarre pas" "the origin (nginx) does not start"; }

# ---------------------------------------------------------------- 3. caches
PREAU_PORT=$(free_port "$ORIGIN_PORT") || die "aucun port libre" "no free port"
"$PREAU" mirror --origin "http://127.0.0.1:$ORIGIN_PORT" --listen "127.0.0.1:$PREAU_PORT" --data "$WORK/mirror" >"$WORK/preau.log" 2>&1 &
PREAU_PID=$!
wait_http "http://127.0.0.1:$PREAU_PORT/f4k.bin" 60 "$PREAU_PID" ||
	{ tail -n 30 "$WORK/preau.log" >&2; die "preau mirror ne répond pas" "preau mirror does not answer"; }

NGINX_PORT=$(free_port "$ORIGIN_PORT" "$PREAU_PORT") || die "aucun port libre" "no free port"
NGX=$WORK/nginx
mkdir -p "$NGX/cache"
nginx_conf "$NGX" "    proxy_cache_path $NGX/cache levels=1:2 keys_zone=bench:16m max_size=8g inactive=7d use_temp_path=off;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://127.0.0.1:$ORIGIN_PORT;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_cache bench;
            proxy_cache_lock on;
            proxy_cache_revalidate on;
            proxy_cache_use_stale error timeout updating;
            add_header Cache-Status \"nginx; \$upstream_cache_status\";
        }
    }"
nginx -e "$NGX/logs/error.log" -p "$NGX" -c "$NGX/nginx.conf" >"$NGX/logs/stdout.log" 2>&1 &
NGINX_PID=$!
wait_http "http://127.0.0.1:$NGINX_PORT/f4k.bin" 20 "$NGINX_PID" ||
	{ cat "$NGX/logs/error.log" >&2; die "nginx ne démarre pas" "nginx does not start"; }

SERVERS=(preau nginx)
declare -A BASE=([preau]="http://127.0.0.1:$PREAU_PORT" [nginx]="http://127.0.0.1:$NGINX_PORT")

# check_all WHEN: every file, whole, with the right bytes, from both caches,
# then one Range inside the video (206 and the right length).
check_all() {
	local s f got code size
	for s in "${SERVERS[@]}"; do
		for f in "${FILES[@]}"; do
			got=$(curl -fsS -m 120 "${BASE[$s]}/$f" | sha256sum | awk '{print $1}') ||
				die "$s : échec du GET $f ($1)" "$s: GET $f failed ($1)"
			[[ $got == "${SUM[$f]}" ]] || die "$s : $f a un mauvais sha256 ($1)" "$s: $f has a wrong sha256 ($1)"
		done
		read -r code size < <(curl -sS -m 10 -o /dev/null -w '%{http_code} %{size_download}\n' -r 1000-66535 "${BASE[$s]}/video.mp4")
		[[ $code == 206 && $size == 65536 ]] ||
			die "$s : Range mal servi ($1 : HTTP $code, $size octets, attendu 206 et 65536)" \
				"$s: Range served wrongly ($1: HTTP $code, $size bytes, want 206 and 65536)"
	done
}
say "remplissage des deux caches…" "warming both caches…"
check_all "$(l10n remplissage warm-up)"
sleep 1
check_all "$(l10n remplissage warm-up)" # nginx stores after the first answer ends
stop_pid "$ORIGIN_PID"
ORIGIN_PID=
say "origine arrêtée : toute réponse vient désormais du cache" "origin stopped: every answer now comes from the cache"
check_all "$(l10n "origine arrêtée" "origin stopped")"
for s in "${SERVERS[@]}"; do
	st=$(curl -sS -m 10 -o /dev/null -D - "${BASE[$s]}/f1m.bin" | tr -d '\r' | awk -F': ' 'tolower($1) == "cache-status" { print $2 }')
	say "  $s Cache-Status : ${st:-absent}" "  $s Cache-Status: ${st:-absent}"
done

sleep 2
IDLE_PREAU=$(rss "$PREAU_PID" VmRSS)
IDLE_NGINX=$(rss_tree "$NGINX_PID" VmRSS)

# ---------------------------------------------------------------- 4. wrk
declare -A R_RPS R_MBS R_P99 R_ERR
run_wrk() { # run_wrk SERVER CASE URL [LUA]
	local s=$1 c=$2 url=$3 lua=${4:-} log=$WORK/wrk-$1-${2// /_}.log
	local args=(-t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency --timeout 30s)
	[[ -n $lua ]] && args+=(-s "$lua")
	say "wrk $s $c ($DURATION, $CONNECTIONS clients)…" "wrk $s $c ($DURATION, $CONNECTIONS clients)…"
	BENCH_SEED=$SEED BENCH_RANGE_SIZE=${SIZE[video.mp4]} \
		timeout $((DUR_S + 60)) wrk "${args[@]}" "$url" >"$log" 2>&1 ||
		{ cat "$log" >&2; die "échec de wrk ($s $c)" "wrk failed ($s $c)"; }
	local parsed
	parsed=$(parse_wrk "$log") || { cat "$log" >&2; die "sortie de wrk illisible ($s $c)" "cannot parse wrk output ($s $c)"; }
	read -r R_RPS["$s,$c"] R_MBS["$s,$c"] R_P99["$s,$c"] R_ERR["$s,$c"] <<<"$parsed"
}
CASES=("4 KB" "1 MB" "video seeks")
declare -A CASE_FILE=(["4 KB"]=f4k.bin ["1 MB"]=f1m.bin ["video seeks"]=video.mp4)
for c in "${CASES[@]}"; do
	lua=
	[[ $c == video* ]] && lua=$HERE/range.lua
	for s in "${SERVERS[@]}"; do
		run_wrk "$s" "$c" "${BASE[$s]}/${CASE_FILE[$c]}" "$lua"
	done
done
LOAD_PREAU=$(rss "$PREAU_PID" VmRSS)
HWM_PREAU=$(rss "$PREAU_PID" VmHWM)
LOAD_NGINX=$(rss_tree "$NGINX_PID" VmRSS)
HWM_NGINX=$(rss_tree "$NGINX_PID" VmHWM)
# The bytes are still right after the load (no corruption under concurrency).
check_all "$(l10n "après la charge" "after the load")"

# ---------------------------------------------------------------- 5. report
declare -A TARGET=(["4 KB"]=0.7 ["1 MB"]=1.0 ["video seeks"]=1.0)
echo
printf '%s\n' "$(l10n "cache HTTP : preau mirror contre nginx proxy_cache — succès de cache seulement (origine arrêtée), $CONNECTIONS clients, $THREADS fils wrk, $DURATION par mesure, $(nproc) cœurs partagés" \
	"HTTP cache: preau mirror vs nginx proxy_cache — cache hits only (origin stopped), $CONNECTIONS clients, $THREADS wrk threads, $DURATION per run, $(nproc) shared cores")"
fmt='%-12s %11s %11s %6s %10s %10s %6s %10s %10s  %s\n'
printf "$fmt" "$(l10n cas case)" "preau req/s" "nginx req/s" ratio "preau MB/s" "nginx MB/s" ratio "p99 preau" "p99 nginx" "$(l10n objectif target)"
errors=0
[[ -n $OUT ]] && printf 'case\tpreau_rps\tnginx_rps\trps_ratio\tpreau_mbs\tnginx_mbs\tmbs_ratio\tpreau_p99_ms\tnginx_p99_ms\ttarget\tverdict\n' >"$OUT"
for c in "${CASES[@]}"; do
	rr=$(ratio "${R_RPS[preau,$c]}" "${R_RPS[nginx,$c]}")
	mr=$(ratio "${R_MBS[preau,$c]}" "${R_MBS[nginx,$c]}")
	if [[ $c == "4 KB" ]]; then
		target="req/s ≥${TARGET[$c]}×"
		v=$(verdict "$rr" ">=" "${TARGET[$c]}")
	else
		# wrk counts the bytes of unfinished responses too, so MB/s is the
		# fair figure for big objects.
		target="MB/s ≥${TARGET[$c]}×"
		v=$(verdict "$mr" ">=" "${TARGET[$c]}")
	fi
	printf "$fmt" "$c" "${R_RPS[preau,$c]}" "${R_RPS[nginx,$c]}" "$rr" "${R_MBS[preau,$c]}" "${R_MBS[nginx,$c]}" "$mr" \
		"${R_P99[preau,$c]}ms" "${R_P99[nginx,$c]}ms" "$target $v"
	[[ -n $OUT ]] && printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "${R_RPS[preau,$c]}" "${R_RPS[nginx,$c]}" "$rr" \
		"${R_MBS[preau,$c]}" "${R_MBS[nginx,$c]}" "$mr" "${R_P99[preau,$c]}" "${R_P99[nginx,$c]}" "${TARGET[$c]}" "$v" >>"$OUT"
	for s in "${SERVERS[@]}"; do
		if [[ ${R_ERR[$s,$c]} -ne 0 ]]; then
			say "  ! $s $c : ${R_ERR[$s,$c]} erreurs (réponses non 2xx, connexions refusées ou délais dépassés), voir $WORK/wrk-$s-${c// /_}.log" \
				"  ! $s $c: ${R_ERR[$s,$c]} errors (non-2xx answers, refused connections or timeouts), see $WORK/wrk-$s-${c// /_}.log"
			errors=1
		fi
	done
done
echo
printf '%s\n' "$(l10n "mémoire résidente (VmRSS ; nginx : maître + ouvriers ; le cache de pages du noyau n'est compté pour aucun) :" \
	"resident memory (VmRSS; nginx: master + workers; the kernel's page cache counts for neither):")"
printf '  %-28s preau %7s MB   nginx %7s MB\n' "$(l10n "au repos, caches pleins" "idle, caches warm")" "$IDLE_PREAU" "$IDLE_NGINX"
printf '  %-28s preau %7s MB   nginx %7s MB\n' "$(l10n "après la charge" "after the load")" "$LOAD_PREAU" "$LOAD_NGINX"
printf '  %-28s preau %7s MB   nginx %7s MB\n' "$(l10n "pic (VmHWM)" "peak (VmHWM)")" "$HWM_PREAU" "$HWM_NGINX"
[[ -n $OUT ]] && printf 'memory\tpreau_idle_MB=%s\tnginx_idle_MB=%s\tpreau_load_MB=%s\tnginx_load_MB=%s\tpreau_hwm_MB=%s\tnginx_hwm_MB=%s\n' \
	"$IDLE_PREAU" "$IDLE_NGINX" "$LOAD_PREAU" "$LOAD_NGINX" "$HWM_PREAU" "$HWM_NGINX" >>"$OUT"
echo
[[ $errors -eq 0 ]] || exit 1
exit 0
