// An open-addressing hash table from vote keys (integers below 2^53) to the
// number of votes cast exactly at that key. Linear probing with
// backward-shift deletion, so no tombstones pile up as the sliding window
// evicts old votes. A Map with such keys (heap numbers) costs several times
// more per vote, and a live query casts thousands of votes per second.
//
// Only exact counts are kept: the tolerance window (neighbouring offsets) is
// summed by the reader for the few keys a decision looks at, so a vote costs
// one probe instead of one per offset in the window.

const EMPTY = 0;

export class VoteTable {
  private keys: Float64Array;
  private counts: Int32Array;
  private mask: number;
  size = 0;

  constructor(capacity = 1 << 14) {
    const cap = 1 << Math.ceil(Math.log2(Math.max(16, capacity)));
    this.keys = new Float64Array(cap);
    this.counts = new Int32Array(cap);
    this.mask = cap - 1;
  }

  private hash(key: number): number {
    const lo = key >>> 0;
    const hi = (key / 4294967296) >>> 0;
    let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 15;
    return h & this.mask;
  }

  /** The slot holding `key`, or the empty slot where it would go. */
  private find(key: number): number {
    let i = this.hash(key);
    while (this.counts[i] !== EMPTY && this.keys[i] !== key) i = (i + 1) & this.mask;
    return i;
  }

  /** Votes exactly at `key`. */
  count(key: number): number {
    return this.counts[this.find(key)];
  }

  /** Adds `delta` to the key's count; returns the new count (a key whose count falls to 0 is removed). */
  add(key: number, delta: number): number {
    if (delta > 0 && (this.size + 1) * 2 > this.keys.length) this.grow();
    const i = this.find(key);
    const c = this.counts[i] + delta;
    if (this.counts[i] === EMPTY) {
      if (delta <= 0) return 0;
      this.keys[i] = key;
      this.size++;
    } else if (c <= 0) {
      this.remove(i);
      return 0;
    }
    this.counts[i] = c;
    return c;
  }

  private remove(slot: number): void {
    const { keys, counts, mask } = this;
    let i = slot;
    let j = slot;
    for (;;) {
      j = (j + 1) & mask;
      if (counts[j] === EMPTY) break;
      const h = this.hash(keys[j]);
      // Move j back to i unless its home slot h lies cyclically in (i, j].
      const stays = i <= j ? h > i && h <= j : h > i || h <= j;
      if (!stays) {
        keys[i] = keys[j];
        counts[i] = counts[j];
        i = j;
      }
    }
    counts[i] = EMPTY;
    this.size--;
  }

  private grow(): void {
    const { keys, counts } = this;
    const cap = keys.length * 2;
    this.keys = new Float64Array(cap);
    this.counts = new Int32Array(cap);
    this.mask = cap - 1;
    for (let i = 0; i < keys.length; i++) {
      if (counts[i] === EMPTY) continue;
      const j = this.find(keys[i]);
      this.keys[j] = keys[i];
      this.counts[j] = counts[i];
    }
  }

  /** Slots, for a scan with `countAt` and `keyAt`. */
  get capacity(): number {
    return this.keys.length;
  }

  /** The count in a slot, 0 when the slot is empty. */
  countAt(slot: number): number {
    return this.counts[slot];
  }

  keyAt(slot: number): number {
    return this.keys[slot];
  }

  clear(): void {
    this.counts.fill(0);
    this.size = 0;
  }
}
