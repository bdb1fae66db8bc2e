// An open-addressing hash table from vote keys (integers below 2^53) to two
// counts: votes exactly at the key, and votes within the offset tolerance of
// it. Linear probing with backward-shift deletion, so no tombstones pile up
// as the sliding window evicts old votes. A Map with such keys (heap numbers)
// costs several times more per vote, and a live query casts thousands of
// votes per second.

const EMPTY = 0;

export class VoteTable {
  private keys: Float64Array;
  private sums: Int32Array;
  private exacts: Int32Array;
  private mask: number;
  size = 0;

  constructor(capacity = 1 << 14) {
    const cap = 1 << Math.ceil(Math.log2(Math.max(16, capacity)));
    this.keys = new Float64Array(cap);
    this.sums = new Int32Array(cap);
    this.exacts = new Int32Array(cap);
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
    while (this.sums[i] !== EMPTY && this.keys[i] !== key) i = (i + 1) & this.mask;
    return i;
  }

  sum(key: number): number {
    return this.sums[this.find(key)];
  }

  exact(key: number): number {
    const i = this.find(key);
    return this.sums[i] === EMPTY ? 0 : this.exacts[i];
  }

  /** Adds `delta` to the key's windowed sum (and `exactDelta` to its own count); returns the new sum. */
  add(key: number, delta: number, exactDelta: number): number {
    if (delta > 0 && (this.size + 1) * 2 > this.keys.length) this.grow();
    const i = this.find(key);
    if (this.sums[i] === EMPTY) {
      if (delta <= 0) return 0;
      this.keys[i] = key;
      this.exacts[i] = 0;
      this.size++;
    }
    const s = this.sums[i] + delta;
    this.exacts[i] += exactDelta;
    if (s <= 0) {
      this.remove(i);
      return 0;
    }
    this.sums[i] = s;
    return s;
  }

  private remove(slot: number): void {
    const { keys, sums, exacts, mask } = this;
    let i = slot;
    let j = slot;
    for (;;) {
      j = (j + 1) & mask;
      if (sums[j] === EMPTY) break;
      const h = this.hash(keys[j]);
      // Move j back to i unless its home slot h lies cyclically in (i, j].
      const stays = i <= j ? h > i && h <= j : h > i || h <= j;
      if (!stays) {
        keys[i] = keys[j];
        sums[i] = sums[j];
        exacts[i] = exacts[j];
        i = j;
      }
    }
    sums[i] = EMPTY;
    exacts[i] = 0;
    this.size--;
  }

  private grow(): void {
    const { keys, sums, exacts } = this;
    const cap = keys.length * 2;
    this.keys = new Float64Array(cap);
    this.sums = new Int32Array(cap);
    this.exacts = new Int32Array(cap);
    this.mask = cap - 1;
    for (let i = 0; i < keys.length; i++) {
      if (sums[i] === EMPTY) continue;
      const j = this.find(keys[i]);
      this.keys[j] = keys[i];
      this.sums[j] = sums[i];
      this.exacts[j] = exacts[i];
    }
  }

  clear(): void {
    this.sums.fill(0);
    this.exacts.fill(0);
    this.size = 0;
  }
}
