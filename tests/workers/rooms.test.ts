import { describe, expect, it } from 'vitest';
import { api, createRoom } from './helpers.ts';
import { ROOM_CODE_ALPHABET } from '../../src/protocol/index.ts';

describe('room creation', () => {
  it('creates a room with a readable code and a one-time control token', async () => {
    const room = await createRoom();
    expect(room.code).toMatch(new RegExp(`^[${ROOM_CODE_ALPHABET}]{6,}$`));
    expect(room.code).not.toMatch(/[01OIL]/);
    expect(Buffer.from(room.control_token, 'base64url').length).toBeGreaterThanOrEqual(16);
    expect(room.ws_url).toBe(`ws://roomtone.test/api/v1/rooms/${room.code}/ws`);
    expect(room.page_url).toBe(`http://roomtone.test/r/${room.code}`);
  });
});
