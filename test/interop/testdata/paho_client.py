#!/usr/bin/python3
"""One MQTT session with Eclipse Paho Python, for mamori's interop tests.

The session is described by a JSON argument (see session in
test/interop/clients_test.go). The script connects, subscribes, publishes,
waits for the expected number of messages and then ends the way it was
told: "disconnect" (a clean DISCONNECT), "abort" (close the socket without
one, so the broker publishes the will) or "hold" (stay connected until
killed). Everything it observes is printed as one JSON object per line.

Written for paho-mqtt 1.6 (Debian's python3-paho-mqtt); with paho-mqtt 2.x
it asks for the 1.x callback signatures, so it runs unchanged.
"""

import json
import os
import socket
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def emit(**event):
    print(json.dumps(event), flush=True)


def fail(msg):
    emit(event="error", error=msg)
    os._exit(2)


def code(rc):
    """An int from a 3.1.1 return code or a v5 ReasonCodes object."""
    return rc if isinstance(rc, int) else rc.value


def main():
    spec = json.loads(sys.argv[1])
    v5 = spec["version"] == 5
    clean = spec.get("clean", True)
    timeout = spec.get("timeout", 20)

    kwargs = {"client_id": spec["id"], "protocol": mqtt.MQTTv5 if v5 else mqtt.MQTTv311}
    if not v5:
        kwargs["clean_session"] = clean
    if hasattr(mqtt, "CallbackAPIVersion"):  # paho-mqtt 2.x
        kwargs["callback_api_version"] = mqtt.CallbackAPIVersion.VERSION1
    client = mqtt.Client(**kwargs)

    connected = threading.Event()
    subscribed = threading.Event()
    all_received = threading.Event()
    state = {"received": 0}
    count = spec.get("count", 0)
    if count == 0:
        all_received.set()

    def on_connect(c, userdata, flags, rc, properties=None):
        if code(rc) != 0 and spec.get("expect_refused"):
            emit(event="refused", rc=code(rc))
            os._exit(0)
        if code(rc) != 0:
            fail("connection refused: %s" % rc)
        emit(event="connected", session_present=bool(flags.get("session present")), rc=code(rc))
        connected.set()

    def on_subscribe(c, userdata, mid, granted, properties=None):
        emit(event="subscribed", granted=[code(g) for g in granted])
        subscribed.set()

    def on_message(c, userdata, msg):
        props = []
        if v5 and msg.properties is not None:
            props = [list(p) for p in getattr(msg.properties, "UserProperty", [])]
        emit(event="message", topic=msg.topic, payload=msg.payload.decode("utf-8", "replace"),
             qos=msg.qos, retain=bool(msg.retain), user_properties=props)
        state["received"] += 1
        if state["received"] >= count:
            all_received.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message

    if spec.get("cafile"):
        import ssl
        ctx = ssl.create_default_context(cafile=spec["cafile"])
        if spec.get("certfile"):
            ctx.load_cert_chain(spec["certfile"], spec.get("keyfile"))
        client.tls_set_context(ctx)

    if spec.get("username") is not None:
        client.username_pw_set(spec["username"], spec.get("password"))

    will = spec.get("will")
    if will:
        client.will_set(will["topic"], will["payload"], will.get("qos", 0), will.get("retain", False))

    try:
        do_connect(client, spec, v5)
    except (OSError, ValueError) as e:
        if spec.get("expect_refused"):
            emit(event="refused", rc=-1, error=str(e))
            os._exit(0)
        fail("connect: %s" % e)
    client.loop_start()
    # A refused TLS 1.3 client learns it only when reading, where Paho's
    # network thread dies without a callback: no CONNACK within a few
    # seconds is then the refusal.
    wait = min(timeout, 5) if spec.get("expect_refused") else timeout
    if not connected.wait(wait):
        if spec.get("expect_refused"):
            emit(event="refused", rc=-1, error="no CONNACK")
            os._exit(0)
        fail("no CONNACK")
    rest(client, spec, v5, timeout, subscribed, all_received, state, count)


def do_connect(client, spec, v5):
    if v5:
        props = None
        if spec.get("session_expiry"):
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = spec["session_expiry"]
        client.connect(spec["host"], spec["port"], keepalive=30, clean_start=spec.get("clean", True), properties=props)
    else:
        client.connect(spec["host"], spec["port"], keepalive=30)


def rest(client, spec, v5, timeout, subscribed, all_received, state, count):
    for sub in spec.get("subscribe") or []:
        subscribed.clear()
        client.subscribe(sub["topic"], sub.get("qos", 0))
        if not subscribed.wait(timeout):
            fail("no SUBACK for " + sub["topic"])

    for m in spec.get("publish") or []:
        props = None
        if v5 and m.get("user_properties"):
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = [tuple(p) for p in m["user_properties"]]
        info = client.publish(m["topic"], m.get("payload", "").encode("utf-8"), m.get("qos", 0),
                              m.get("retain", False), properties=props)
        info.wait_for_publish(timeout)
        if not info.is_published():
            fail("publish to %s not acknowledged" % m["topic"])
        emit(event="published", topic=m["topic"])

    if not all_received.wait(timeout):
        fail("received %d of %d messages" % (state["received"], count))

    end = spec.get("end", "disconnect")
    if end == "abort":
        # Close the TCP connection without DISCONNECT, as a crash would.
        sock = client.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        os._exit(0)
    if end == "hold":
        threading.Event().wait()
    client.disconnect()
    client.loop_stop()
    emit(event="done")


if __name__ == "__main__":
    main()
