#!/usr/bin/env bash
# compare.sh — mamori side by side with Mosquitto, mochi-mqtt and
# nats-server's MQTT gateway, on this machine, in one run (SPEC §10,
# issue 10).
#
# For every case (scenario × transport) and every run, each broker is started
# fresh on a 127.0.0.1 port, driven by "mamori bench" with --broker-pid (so
# its CPU time and memory come from /proc), and stopped by PID. The order of
# the brokers rotates from run to run so that none always goes first. The
# medians and the ratios mamori/anchor are printed as markdown.
#
# The anchors are built or installed here, never committed: mochi-mqtt v2.7.9
# is a few lines of Go in a temporary directory outside the repository, built
# from the Go module proxy; Mosquitto and nats-server are Debian's packages
# (apt-get install, when missing). The TLS handshake cases also run against a
# bare Go crypto/tls server that answers CONNECT with CONNACK: the ceiling a
# Go broker's handshake rate can approach on this machine.
#
# Usage: bench/compare.sh [--quick] [--runs N] [--cases "fanin conn-tls13 ..."]
#                         [--brokers "mosquitto mochi nats mamori"]
#                         [--mamori BIN] [--out FILE] [--keep]
#   --quick     one run, short durations (a smoke run, numbers are rough)
#   --mamori    use this mamori binary instead of building ./cmd/mamori
#   --out       also write the markdown table to FILE
#   --keep      keep the temporary directory (configs, logs, raw JSON)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=3
QUICK=0
CASES=""
BROKERS="mosquitto mochi nats mamori"
MAMORI=""
OUT=""
KEEP=0
MOCHI_VERSION=v2.7.9

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1; RUNS=1 ;;
	--runs) RUNS=$2; shift ;;
	--cases) CASES=$2; shift ;;
	--brokers) BROKERS=$2; shift ;;
	--mamori) MAMORI=$2; shift ;;
	--out) OUT=$2; shift ;;
	--keep) KEEP=1 ;;
	-h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

# Durations: long enough for a steady state, short because the machine is
# shared (2 cores) and every case runs against every broker.
if [ "$QUICK" = 1 ]; then
	DUR=2s; IDLE_CONNS=1000; HOLD=1s
else
	DUR=5s; IDLE_CONNS=5000; HOLD=2s
fi

# case name | mamori bench arguments | transport (plain, ecdsa, rsa, ecdsa-mtls)
# The handshake cases use --no-verify: client and broker share the cores,
# and the client's chain verification would take CPU from the broker.
ALL_CASES=(
	"fanin|fanin --pubs 16 -d $DUR|plain"
	"fanout|fanout --subs 100 -d $DUR|plain"
	"fanin-tls13|fanin --pubs 16 -d $DUR --tls-version tlsv1.3|ecdsa"
	"qos1|qos1 --pubs 8 --window 100 -d $DUR|plain"
	"latency|latency --rate 10000 -q 1 -d $DUR|plain"
	"conn-plain|conn -c 16 -d $DUR|plain"
	"conn-tls13-ecdsa|conn -c 16 -d $DUR --no-verify --tls-version tlsv1.3|ecdsa"
	"conn-tls12-rsa|conn -c 16 -d $DUR --no-verify --tls-version tlsv1.2|rsa"
	"conn-mtls13-ecdsa|conn -c 16 -d $DUR --no-verify --tls-version tlsv1.3|ecdsa-mtls"
	"idle-plain|idle --conns $IDLE_CONNS -c 32 --hold $HOLD|plain"
	"idle-tls13|idle --conns $IDLE_CONNS -c 32 --hold $HOLD --tls-version tlsv1.3|ecdsa"
)

TMP=$(mktemp -d /tmp/mamori-compare.XXXXXX)
# Mosquitto started as root drops to the "mosquitto" user, which must be
# able to read its configuration and the certificates.
chmod 755 "$TMP"
mkdir -p "$TMP/conf" "$TMP/logs" "$TMP/results" "$TMP/certs" "$TMP/js"
BPID=""
cleanup() {
	if [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; then
		kill "$BPID" 2>/dev/null || true
		wait "$BPID" 2>/dev/null || true
	fi
	if [ "$KEEP" = 1 ]; then
		echo "kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '== %s\n' "$*" >&2; }

# Idle cases hold thousands of sockets in one process.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- build and install -------------------------------------------------------

if [ -z "$MAMORI" ]; then
	log "building mamori"
	if ! (cd "$REPO" && go build -o "$TMP/mamori" ./cmd/mamori); then
		echo "compare.sh: cannot build ./cmd/mamori from the working tree; pass --mamori BIN" >&2
		exit 1
	fi
	MAMORI=$TMP/mamori
fi
MAMORI_VERSION=$("$MAMORI" version 2>/dev/null | head -1 || echo unknown)
# The working tree is what was built; HEAD says where it stood.
MAMORI_VERSION="$MAMORI_VERSION, working tree at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"

needs() { case " $BROKERS " in *" $1 "*) return 0 ;; esac; return 1; }

if needs mochi; then
	log "building the mochi-mqtt $MOCHI_VERSION anchor (outside the repository)"
	mkdir -p "$TMP/mochi"
	cat >"$TMP/mochi/main.go" <<'EOF'
// The mochi-mqtt anchor of mamori's bench/compare.sh: a listener, anonymous
// access, everything else at mochi's defaults.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:1883", "listen address")
	cert := flag.String("cert", "", "server certificate (enables TLS)")
	key := flag.String("key", "", "server key")
	ca := flag.String("ca", "", "require client certificates from this CA")
	flag.Parse()
	var tc *tls.Config
	if *cert != "" {
		c, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			log.Fatal(err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{c}}
		if *ca != "" {
			pem, err := os.ReadFile(*ca)
			if err != nil {
				log.Fatal(err)
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	s := mqtt.New(&mqtt.Options{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		log.Fatal(err)
	}
	if err := s.AddListener(listeners.NewTCP(listeners.Config{ID: "bench", Address: *addr, TLSConfig: tc})); err != nil {
		log.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		log.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	s.Close()
}
EOF
	(cd "$TMP/mochi" && go mod init mochianchor >/dev/null 2>&1 &&
		go get "github.com/mochi-mqtt/server/v2@$MOCHI_VERSION" >/dev/null 2>&1 &&
		go mod tidy >/dev/null 2>&1 &&
		go build -o "$TMP/mochi-anchor" .)
fi

if needs nats || needs mosquitto; then
	missing=""
	needs mosquitto && ! command -v mosquitto >/dev/null && missing="$missing mosquitto"
	needs nats && ! command -v nats-server >/dev/null && missing="$missing nats-server"
	if [ -n "$missing" ]; then
		log "installing$missing"
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
	fi
fi
MOSQ_BIN=$(command -v mosquitto || echo /usr/sbin/mosquitto)

# The handshake ceiling: a bare crypto/tls server that completes the
# handshake, answers CONNECT with CONNACK and waits for the client to close.
log "building the bare crypto/tls server"
mkdir -p "$TMP/tlsbare"
cat >"$TMP/tlsbare/main.go" <<'EOF'
// A bare Go TLS server for mamori's bench/compare.sh: the handshake rate
// Go's crypto/tls reaches on this machine with no broker around it.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"io"
	"log"
	"net"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8883", "listen address")
	cert := flag.String("cert", "", "server certificate")
	key := flag.String("key", "", "server key")
	ca := flag.String("ca", "", "require client certificates from this CA")
	flag.Parse()
	c, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		log.Fatal(err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{c}}
	if *ca != "" {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			log.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	ln, err := tls.Listen("tcp", *addr, tc)
	if err != nil {
		log.Fatal(err)
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		go serve(conn)
	}
}

// serve reads one packet (CONNECT), answers CONNACK and discards the rest.
func serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return
	}
	n, mult := 0, 1
	for i := 0; i < 4; i++ {
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return
		}
		n += int(b[0]&0x7f) * mult
		mult *= 128
		if b[0]&0x80 == 0 {
			break
		}
	}
	if _, err := io.CopyN(io.Discard, c, int64(n)); err != nil {
		return
	}
	if _, err := c.Write([]byte{0x20, 2, 0, 0}); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	io.Copy(io.Discard, c)
}
EOF
(cd "$TMP/tlsbare" && go mod init tlsbare >/dev/null 2>&1 && go build -o "$TMP/tlsbare-server" .)

# --- certificates ------------------------------------------------------------

log "making certificates"
(
	cd "$TMP/certs"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
		-days 90 -subj /CN=mamori-bench-ca 2>/dev/null
	issue() { # name keyspec usage
		openssl req -newkey "$2" "${@:4}" -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=%s\n' "$3" >"$1.ext"
		openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 90 \
			-extfile "$1.ext" -out "$1.crt" 2>/dev/null
	}
	issue ecdsa ec serverAuth -pkeyopt ec_paramgen_curve:P-256
	issue rsa rsa:2048 serverAuth
	issue client ec clientAuth -pkeyopt ec_paramgen_curve:P-256
	chmod 644 ./*
)
C=$TMP/certs

# --- brokers -----------------------------------------------------------------

PORT=$((21000 + ($$ % 400) * 20))
next_port() { PORT=$((PORT + 1)); }

# server_cert TRANSPORT: the certificate and key the transport uses.
server_cert() { case "$1" in rsa) echo "$C/rsa.crt $C/rsa.key" ;; *) echo "$C/ecdsa.crt $C/ecdsa.key" ;; esac; }

# mosquitto_conf PORT TRANSPORT: a mosquitto.conf, read by Mosquitto and
# mamori alike. Connection messages are off, as the other brokers do not
# log every connection either.
mosquitto_conf() {
	local f=$TMP/conf/mosquitto-$1.conf
	{
		echo "listener $1 127.0.0.1"
		echo "allow_anonymous true"
		echo "connection_messages false"
		echo "log_type error"
		echo "log_type warning"
		echo "persistence false"
		if [ "$2" != plain ]; then
			read -r crt key <<<"$(server_cert "$2")"
			echo "certfile $crt"
			echo "keyfile $key"
		fi
		if [ "$2" = ecdsa-mtls ]; then
			echo "cafile $C/ca.crt"
			echo "require_certificate true"
		fi
	} >"$f"
	echo "$f"
}

# nats_conf PORT TRANSPORT: nats-server with JetStream (its MQTT gateway
# needs it) and one MQTT listener, plain or TLS.
nats_conf() {
	local f=$TMP/conf/nats-$1.conf
	{
		echo "server_name: mamori_bench"
		echo "listen: 127.0.0.1:-1"
		echo "jetstream { store_dir: \"$TMP/js/$1\" }"
		echo "mqtt {"
		echo "  listen: \"127.0.0.1:$1\""
		if [ "$2" != plain ]; then
			read -r crt key <<<"$(server_cert "$2")"
			echo "  tls {"
			echo "    cert_file: \"$crt\""
			echo "    key_file: \"$key\""
			if [ "$2" = ecdsa-mtls ]; then
				echo "    ca_file: \"$C/ca.crt\""
				echo "    verify: true"
			fi
			echo "  }"
		fi
		echo "}"
	} >"$f"
	echo "$f"
}

# start_broker NAME PORT TRANSPORT: starts it in the background; BPID.
start_broker() {
	local name=$1 port=$2 tr=$3 logf=$TMP/logs/$1-$2.log
	local crt key
	read -r crt key <<<"$(server_cert "$tr")"
	case "$name" in
	mosquitto) "$MOSQ_BIN" -c "$(mosquitto_conf "$port" "$tr")" >"$logf" 2>&1 & ;;
	mamori) "$MAMORI" broker -c "$(mosquitto_conf "$port" "$tr")" >"$logf" 2>&1 & ;;
	nats) nats-server -c "$(nats_conf "$port" "$tr")" >"$logf" 2>&1 & ;;
	mochi)
		local args=(-addr "127.0.0.1:$port")
		[ "$tr" != plain ] && args+=(-cert "$crt" -key "$key")
		[ "$tr" = ecdsa-mtls ] && args+=(-ca "$C/ca.crt")
		"$TMP/mochi-anchor" "${args[@]}" >"$logf" 2>&1 &
		;;
	go-tls)
		local args=(-addr "127.0.0.1:$port" -cert "$crt" -key "$key")
		[ "$tr" = ecdsa-mtls ] && args+=(-ca "$C/ca.crt")
		"$TMP/tlsbare-server" "${args[@]}" >"$logf" 2>&1 &
		;;
	esac
	BPID=$!
	for _ in $(seq 100); do
		if ! kill -0 "$BPID" 2>/dev/null; then
			echo "compare.sh: $name exited at start:" >&2
			tail -5 "$logf" >&2
			BPID=""
			return 1
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			# nats opens its MQTT port before JetStream is quite ready.
			[ "$name" = nats ] && sleep 0.5
			return 0
		fi
		sleep 0.1
	done
	echo "compare.sh: $name did not listen on $port" >&2
	stop_broker
	return 1
}

stop_broker() {
	[ -z "$BPID" ] && return 0
	kill "$BPID" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$BPID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$BPID" 2>/dev/null || true
	wait "$BPID" 2>/dev/null || true
	BPID=""
}

# tls_args TRANSPORT: the client side of the transport.
tls_args() {
	case "$1" in
	plain) ;;
	ecdsa-mtls) echo "--cafile $C/ca.crt --cert $C/client.crt --key $C/client.key" ;;
	*) echo "--cafile $C/ca.crt" ;;
	esac
}

# --- runs --------------------------------------------------------------------

read -r -a BROKER_LIST <<<"$BROKERS"
START=$(date -u +%Y-%m-%dT%H:%MZ)
DONE_CASES=()
for spec in "${ALL_CASES[@]}"; do
	IFS='|' read -r name args tr <<<"$spec"
	if [ -n "$CASES" ] && [[ " $CASES " != *" $name "* ]]; then
		continue
	fi
	DONE_CASES+=("$name")
	brokers=("${BROKER_LIST[@]}")
	# The bare TLS server only takes part where handshakes are measured.
	[[ $name == conn-* && $tr != plain ]] && brokers+=(go-tls)
	n=${#brokers[@]}
	for run in $(seq "$RUNS"); do
		for i in $(seq 0 $((n - 1))); do
			b=${brokers[$(((i + run - 1) % n))]}
			next_port
			out=$TMP/results/$name@$b@$run.json
			log "$name run $run/$RUNS: $b"
			if ! start_broker "$b" "$PORT" "$tr"; then
				echo '{"error":"broker did not start"}' >"$out"
				continue
			fi
			# shellcheck disable=SC2086 # args and tls_args are word lists
			if ! "$MAMORI" bench $args $(tls_args "$tr") -p "$PORT" --broker-pid "$BPID" \
				--label "$b" --json --quiet >"$out" 2>"$TMP/logs/bench-$name-$b-$run.err"; then
				msg=$(tail -1 "$TMP/logs/bench-$name-$b-$run.err" | tr -d '"\\')
				echo "{\"error\":\"$msg\"}" >"$out"
				echo "   failed: $msg" >&2
			fi
			stop_broker
		done
	done
done

# --- report ------------------------------------------------------------------

versions() {
	echo "- mamori: $MAMORI_VERSION"
	needs mosquitto && echo "- Mosquitto: $("$MOSQ_BIN" -h 2>/dev/null | head -1 | sed 's/^mosquitto version //')"
	needs mochi && echo "- mochi-mqtt: $MOCHI_VERSION (defaults, AllowHook)"
	needs nats && echo "- nats-server: $(nats-server --version 2>/dev/null | sed 's/^nats-server: //') (Debian package; MQTT with JetStream)"
	echo "- Go: $(go version | cut -d' ' -f3)"
	echo "- OpenSSL: $(openssl version | cut -d' ' -f2)"
}
{
	echo "Measured $START on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(uname -sr)."
	echo "Command: \`bench/compare.sh$( [ "$QUICK" = 1 ] && echo ' --quick')$( [ "$QUICK" = 0 ] && echo " --runs $RUNS")\`; medians of $RUNS run(s)."
	echo
	versions
	echo
	(cd "$REPO" && go run ./bench/summarize "$TMP/results" "${DONE_CASES[@]}")
} | tee "${OUT:-/dev/null}"
