'use strict';
// One MQTT session with MQTT.js, for mamori's interop tests.
//
// The session is described by a JSON argument (see session in
// test/interop/clients_test.go) and works exactly like paho_client.py:
// connect, subscribe, publish, wait for the expected number of messages,
// then "disconnect", "abort" (close the socket without DISCONNECT) or
// "hold". Everything observed is printed as one JSON object per line.
//
// MQTT.js comes from test/node/node_modules (npm ci there), found by path
// so no NODE_PATH is needed.

const path = require('path');
const mqtt = require(path.join(__dirname, '..', '..', 'node', 'node_modules', 'mqtt'));

const spec = JSON.parse(process.argv[2]);
const v5 = spec.version === 5;
const count = spec.count || 0;
const timeoutMs = (spec.timeout || 20) * 1000;

// Pipes are written synchronously on Linux, so a line is out before an
// exit that follows it.
const emit = (ev) => process.stdout.write(JSON.stringify(ev) + '\n');
const fail = (msg) => {
  emit({ event: 'error', error: String(msg) });
  process.exit(2);
};

// MQTT.js gives user properties as an object whose values are a string or,
// for a repeated key, an array; the tests use [key, value] pairs.
const pairs = (up) => {
  const out = [];
  for (const [k, v] of Object.entries(up || {})) {
    for (const x of Array.isArray(v) ? v : [v]) out.push([k, String(x)]);
  }
  return out;
};

const opts = {
  host: spec.host,
  port: spec.port,
  protocolVersion: v5 ? 5 : 4,
  clientId: spec.id,
  clean: spec.clean !== false,
  keepalive: 30,
  reconnectPeriod: 0, // one session per process; a reconnect would hide errors
  connectTimeout: timeoutMs,
};
if (v5 && spec.session_expiry) opts.properties = { sessionExpiryInterval: spec.session_expiry };
if (spec.will) {
  opts.will = {
    topic: spec.will.topic,
    payload: Buffer.from(spec.will.payload || ''),
    qos: spec.will.qos || 0,
    retain: !!spec.will.retain,
  };
}

const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
const client = mqtt.connect(opts);
let received = 0;
let ready = false;
let ending = false;

client.on('error', fail);
client.on('message', (topic, payload, packet) => {
  emit({
    event: 'message',
    topic,
    payload: payload.toString('utf8'),
    qos: packet.qos,
    retain: !!packet.retain,
    user_properties: pairs(packet.properties && packet.properties.userProperties),
  });
  received++;
  maybeEnd();
});

client.once('connect', async (connack) => {
  emit({
    event: 'connected',
    session_present: !!connack.sessionPresent,
    rc: connack.reasonCode || connack.returnCode || 0,
  });
  try {
    for (const s of spec.subscribe || []) {
      const granted = await client.subscribeAsync(s.topic, { qos: s.qos || 0 });
      emit({ event: 'subscribed', granted: granted.map((g) => g.qos) });
    }
    const publish = async (m) => {
      const popts = { qos: m.qos || 0, retain: !!m.retain };
      if (v5 && m.user_properties) {
        popts.properties = { userProperties: {} };
        for (const [k, v] of m.user_properties) popts.properties.userProperties[k] = v;
      }
      await client.publishAsync(m.topic, m.payload || '', popts);
      emit({ event: 'published', topic: m.topic });
    };
    if (spec.burst) {
      // Every PUBLISH is written before any acknowledgement is read, as
      // an application publishing in a loop does.
      await Promise.all((spec.publish || []).map(publish));
    } else {
      for (const m of spec.publish || []) await publish(m);
    }
  } catch (err) {
    fail(err);
  }
  ready = true;
  maybeEnd();
});

function maybeEnd() {
  if (!ready || received < count || ending) return;
  ending = true;
  switch (spec.end || 'disconnect') {
    case 'abort':
      // Close the TCP connection without DISCONNECT, as a crash would.
      client.stream.destroy();
      process.exit(0);
      break;
    case 'hold':
      clearTimeout(timer);
      break;
    default:
      client.end(false, {}, () => {
        emit({ event: 'done' });
        process.exit(0);
      });
  }
}
