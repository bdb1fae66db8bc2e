// Vote keys are integers below 2^53 (see OffsetVoter), kept in hash tables as
// two int32 words. One mix of those words serves every table that holds them
// (AlignTable, AnchorGroups, the voter's cover count).

export const TWO_32 = 4294967296;

/** The key's low word (as an int32). */
export function lowWord(key: number): number {
  return key | 0;
}

/** The key's high word. */
export function highWord(key: number): number {
  return (key / TWO_32) | 0;
}

/** A well-spread int32 from two words (multiply-xorshift). */
export function mixWords(lo: number, hi: number): number {
  const h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  return h ^ (h >>> 15);
}
