// Package store persists what the broker must not lose — retained
// messages, persistent sessions with their subscriptions, queued and
// in-flight outbound messages, inbound QoS 2 state — in an embedded Pebble
// database, so that an acknowledged message survives a restart and a
// kill -9 (SPEC §8).
//
// # Write path
//
// The broker keeps its state in memory and routes there; the store only
// records. For each event it builds one Batch (a publish: the body once,
// one queue entry per persistent session it was routed to, the retained
// set or clear) and hands it to DB.Commit with a callback. Commit returns
// at once; the applier goroutine writes batches to Pebble's write-ahead
// log in Commit order without waiting for the disk, and the completer
// goroutine waits for the fsync and runs the callbacks in the same order.
// Pebble syncs all log bytes written so far with one fsync, so concurrent
// Sync commits share it (group commit). The broker sends PUBACK/PUBREC,
// SUBACK and a CONNACK that creates a session from the callback, so
// nothing is acknowledged before it is durable; a subscriber's
// acknowledgement may be committed Lazy (a loss means a redelivery),
// bounded by the autosave interval and change count. Never Pebble's
// NoSync for anything acknowledged: unsynced log bytes sit in the process
// and are lost on kill -9.
//
// A write error fails the store for good (ErrFailed): a WAL write or sync
// error, a failed memtable flush (Pebble would retry it forever and stall
// writes), a Pebble fatal error. Every outstanding and later commit is
// called back with it — even when Pebble has wedged the applier — so the
// broker answers with a failure reason code instead of acknowledging, and
// the process keeps running. One case is beyond the store: Pebble v2.1.7
// ends the process (a fatal "unlock of unlocked mutex" in rotateWAL) when
// creating or closing a WAL file fails while it rotates the memtable;
// nothing acknowledged is lost then either, the broker restarts.
//
// A nil *DB is the memory-only store (persistence false): nothing is
// built, nothing is written, callbacks run at once.
//
// # Key layout
//
// One byte of prefix names the kind of record. Client ids are written as
// uvarint(len) followed by the bytes, so that one client's range never
// contains another's ("a" and "ab"); integers are big-endian, so keys sort
// numerically. Values start with a format version byte (1).
//
//	m <name>                       store metadata (the Mosquitto import marker)
//	b <body id:8>                  message body: flags, topic, payload, MQTT 5 properties, expiry, sender
//	r <topic>                      retained message (same encoding as a body)
//	s <client>                     session: protocol version, expiry interval, disconnect time, username
//	u <client> <filter>            subscription: QoS, options, subscription identifier
//	q <client> <seq:8>             queue entry: body id, QoS, retain, subscription identifier
//	f <client> <seq:8>             in-flight state of entry seq: packet id, Sent or Released (PUBREC received)
//	i <client> <packet id:2>       inbound QoS 2 packet id awaiting PUBREL
//
// Body ids and queue keys are written once and deleted with SingleDelete;
// keys that are overwritten (retained, session, subscription, in-flight,
// inbound QoS 2) are deleted with Delete. Deleting a session range-deletes
// its u, q, f and i ranges.
//
// # Bodies and reference counts
//
// A body is stored once however many sessions it is queued for. The
// number of queue entries referring to each body is kept in memory by the
// applier goroutine (so it follows commit order exactly), rebuilt by
// Recover while it streams the queues; a batch that removes a body's last
// reference deletes the body in the same batch.
//
// # Recovery
//
// Recover streams retained messages, then each session with its
// subscriptions and inbound QoS 2 ids, then its entries in Seq order with
// their in-flight state. Bodies are not loaded: the broker reads each with
// DB.Body once (and shares it between entries), so memory is bounded by
// what the broker keeps, not by the store's size.
//
// # Legacy interface
//
// Store and Nop are the synchronous interface the broker uses until it is
// wired to DB; they go away then.
package store
