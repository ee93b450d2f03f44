// The Publisher's ring of publishes waiting for their acks (libs/nats/waiting.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { WaitingAcks } from "../libs/nats/waiting.ts";

type W = { id: string; deadline: number };
const w = (id: string, deadline: number): W => ({ id, deadline });

test("an ack takes its own publish once, in any order; a token not waiting takes nothing", () => {
  const acks = new WaitingAcks<W>();
  const tokens = ["a", "b", "c"].map((id, n) => acks.add(w(id, n)));
  assert.deepEqual(tokens, [0, 1, 2]);
  assert.equal(acks.take(1)?.id, "b");
  assert.equal(acks.take(1), undefined, "a second ack of the same publish");
  assert.equal(acks.take(0)?.id, "a");
  assert.equal(acks.take(7), undefined, "never given");
  assert.equal(acks.take(Number.NaN), undefined, "a reply subject that is not ours");
  assert.deepEqual(acks.takeExpired().map((x) => x.id), ["c"]);
});

test("the sweep takes the late ones oldest first and stops at the first not yet late", () => {
  const acks = new WaitingAcks<W>();
  acks.add(w("a", 10));
  const b = acks.add(w("b", 20));
  acks.add(w("c", 30));
  acks.add(w("d", 40));
  acks.take(b);
  assert.deepEqual(acks.takeExpired(30).map((x) => x.id), ["a", "c"]);
  assert.equal(acks.take(0), undefined, "an ack after its publish failed as late");
  assert.deepEqual(acks.takeExpired().map((x) => x.id), ["d"]);
  assert.deepEqual(acks.takeExpired(), []);
});

test("more publishes in flight than slots: the ring grows and keeps every one under its token", () => {
  const acks = new WaitingAcks<W>();
  for (let n = 0; n < 3000; n++) acks.add(w(`x${n}`, n));
  // Settle from the middle outwards, so the ring wraps with gaps before it grows again.
  for (let n = 1000; n < 2000; n++) assert.equal(acks.take(n)?.id, `x${n}`);
  for (let n = 3000; n < 5000; n++) acks.add(w(`x${n}`, n));
  assert.equal(acks.take(4999)?.id, "x4999");
  assert.equal(acks.take(0)?.id, "x0");
  const left = acks.takeExpired().map((x) => x.id);
  assert.equal(left.length, 5000 - 1000 - 2);
  assert.equal(left[0], "x1");
  assert.equal(left[left.length - 1], "x4998");
});
