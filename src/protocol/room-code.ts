// Room codes are read aloud and typed from a screen across the room, so the
// alphabet leaves out the look-alikes 0/O and 1/I/L. 31^6 ≈ 8.9e8 codes;
// guessing is throttled per client (see src/worker/limits.ts).

export const ROOM_CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
export const ROOM_CODE_LENGTH = 6;

const VALID = new RegExp(`^[${ROOM_CODE_ALPHABET}]{${ROOM_CODE_LENGTH}}$`);

export function generateRoomCode(random: (n: number) => Uint8Array = (n) => crypto.getRandomValues(new Uint8Array(n))): string {
  let code = '';
  // Rejection sampling keeps every character equally likely.
  const limit = 256 - (256 % ROOM_CODE_ALPHABET.length);
  while (code.length < ROOM_CODE_LENGTH) {
    for (const b of random(ROOM_CODE_LENGTH * 2)) {
      if (b < limit && code.length < ROOM_CODE_LENGTH) code += ROOM_CODE_ALPHABET[b % ROOM_CODE_ALPHABET.length];
    }
  }
  return code;
}

/** Case-insensitive, spaces and dashes ignored ("abc-def" reads as ABCDEF); null when it cannot be a code. */
export function normalizeRoomCode(input: string): string | null {
  const code = input.replace(/[\s-]/g, '').toUpperCase();
  return VALID.test(code) ? code : null;
}
