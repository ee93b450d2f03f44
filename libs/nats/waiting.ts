/**
 * The publishes a Publisher waits on, by token (0, 1, 2, … in publish
 * order, which is deadline order), in a ring of slots that is reused.
 *
 * Not a Map: a Map that lives long sits in old space, and V8 makes the
 * tables it rehashes into there too as it grows and shrinks around the
 * publishes in flight. A replaced table is garbage that keeps every entry it
 * held, and until a full GC frees it, it holds those young entries alive
 * through every scavenge: each waiting publish (its promise, its work item
 * and message) was promoted to old space with it. That was most of the
 * old-space garbage of a coordinator publishing 1,000,000 work items. A
 * settled slot here is cleared at once, so an ack leaves nothing behind.
 */
export class WaitingAcks<T extends { readonly deadline: number }> {
  /** A power of two long: a token's slot is its low bits (`&` keeps them right for tokens past 2^31 too). */
  private slots: (T | undefined)[] = new Array<T | undefined>(1024).fill(undefined);
  /** The oldest token not yet settled or expired; tokens below it are done. */
  private head = 0;
  private next = 0;

  /** Adds a waiting publish and returns its token. */
  add(waiting: T): number {
    if (this.next - this.head === this.slots.length) this.grow();
    const token = this.next++;
    this.slots[token & (this.slots.length - 1)] = waiting;
    return token;
  }

  /** Removes and returns the publish waiting under `token`; undefined when it is not waiting (expired already, or never given). */
  take(token: number): T | undefined {
    if (!Number.isInteger(token) || token < this.head || token >= this.next) return undefined;
    const mask = this.slots.length - 1;
    const waiting = this.slots[token & mask];
    this.slots[token & mask] = undefined;
    while (this.head < this.next && this.slots[this.head & mask] === undefined) this.head++;
    return waiting;
  }

  /** Removes and returns, oldest first, those whose deadline is before `now` (and all of them without `now`). */
  takeExpired(now = Infinity): T[] {
    const late: T[] = [];
    const mask = this.slots.length - 1;
    for (; this.head < this.next; this.head++) {
      const waiting = this.slots[this.head & mask];
      if (waiting === undefined) continue;
      if (waiting.deadline > now) break;
      this.slots[this.head & mask] = undefined;
      late.push(waiting);
    }
    return late;
  }

  /** Removes and returns every one `match` picks (a scan of all in flight: for rare events only). */
  takeWhere(match: (waiting: T) => boolean): T[] {
    const picked: T[] = [];
    const mask = this.slots.length - 1;
    for (let t = this.head; t < this.next; t++) {
      const waiting = this.slots[t & mask];
      if (waiting !== undefined && match(waiting)) {
        this.slots[t & mask] = undefined;
        picked.push(waiting);
      }
    }
    while (this.head < this.next && this.slots[this.head & mask] === undefined) this.head++;
    return picked;
  }

  /** Twice the slots, each waiting publish at its token's place in the larger ring. */
  private grow(): void {
    const old = this.slots;
    this.slots = new Array<T | undefined>(old.length * 2).fill(undefined);
    for (let t = this.head; t < this.next; t++) this.slots[t & (this.slots.length - 1)] = old[t & (old.length - 1)];
    old.fill(undefined); // the old ring is garbage now: it must not hold the entries alive (see above)
  }
}
