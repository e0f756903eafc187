// Subscribes with MQTT.js over WebSockets and prints what happens as JSON
// lines: {"event":"subscribed"}, then one {"event":"message",...} per
// message until COUNT have arrived, then it disconnects and exits 0.
//
//   node mqttjs_ws.js URL TOPIC COUNT
const path = require('path');
const mqtt = require(path.join(__dirname, '..', '..', 'node', 'node_modules', 'mqtt'));

const [url, topic, count] = process.argv.slice(2);
const say = (o) => console.log(JSON.stringify(o));
const timer = setTimeout(() => { say({ event: 'error', error: 'timeout' }); process.exit(2); }, 30000);

const c = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10000, clean: true });
let n = 0;
c.on('connect', () => {
  say({ event: 'connected' });
  c.subscribe(topic, { qos: 1 }, (err, granted) => {
    if (err) { say({ event: 'error', error: String(err) }); process.exit(1); }
    say({ event: 'subscribed', granted: granted.map((g) => g.qos) });
  });
});
c.on('message', (t, p) => {
  say({ event: 'message', topic: t, payload: p.toString() });
  if (++n >= Number(count)) {
    c.end(false, {}, () => { clearTimeout(timer); say({ event: 'done' }); process.exit(0); });
  }
});
c.on('error', (e) => { say({ event: 'error', error: String(e) }); process.exit(1); });
