#!/usr/bin/python3
"""Seed 000's client: Eclipse Paho Python over TLS, for mamori's TLS tests.

One JSON argument:
  host, port      where to connect ("mqtt.example.com" is resolved through
                  "resolve", as /etc/hosts would in the seed)
  resolve         {name: address} used instead of DNS
  cafile          the CA to trust (ssl_context.load_verify_locations)
  check_hostname  ssl_context.check_hostname (verify_mode is CERT_REQUIRED)
  sni             when set, the SNI (and verified name) sent instead of host
  topic           subscribed to, then published to once

Prints "connected", then "message <payload>" when the publication comes
back, and exits 0; on any failure prints "error: <why>" and exits 1.
Written for paho-mqtt 1.6 (Debian's python3-paho-mqtt).
"""

import json
import socket
import ssl
import sys
import threading

import paho.mqtt.client as mqtt


def main():
    spec = json.loads(sys.argv[1])
    resolve = spec.get("resolve", {})
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        return real_getaddrinfo(resolve.get(host, host), *args, **kwargs)

    socket.getaddrinfo = getaddrinfo

    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.load_verify_locations(cafile=spec["cafile"])
    ctx.check_hostname = spec["check_hostname"]
    ctx.verify_mode = ssl.CERT_REQUIRED
    sni = spec.get("sni")
    if sni:
        # Send another name than the one connected to, as an SNI-aware
        # client configured for the proxy's name does in the seed.
        wrap = ctx.wrap_socket

        def wrap_socket(sock, *args, **kwargs):
            kwargs["server_hostname"] = sni
            return wrap(sock, *args, **kwargs)

        ctx.wrap_socket = wrap_socket

    client = mqtt.Client(client_id="paho-seed000", protocol=mqtt.MQTTv311)
    client.tls_set_context(ctx)
    got = threading.Event()
    state = {}

    def on_connect(c, userdata, flags, rc):
        if rc != 0:
            state["error"] = "connection refused: %d" % rc
            got.set()
            return
        print("connected", flush=True)
        c.subscribe(spec["topic"], qos=1)

    def on_subscribe(c, userdata, mid, granted):
        c.publish(spec["topic"], "hello from paho", qos=1)

    def on_message(c, userdata, msg):
        state["payload"] = msg.payload.decode()
        got.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    try:
        client.connect(spec["host"], spec["port"], keepalive=30)
    except Exception as e:  # ssl.SSLCertVerificationError and friends
        print("error: %s: %s" % (type(e).__name__, e), flush=True)
        sys.exit(1)
    client.loop_start()
    if not got.wait(20):
        print("error: no message within 20s", flush=True)
        sys.exit(1)
    client.disconnect()
    client.loop_stop()
    if "error" in state:
        print("error: " + state["error"], flush=True)
        sys.exit(1)
    print("message " + state["payload"], flush=True)


main()
